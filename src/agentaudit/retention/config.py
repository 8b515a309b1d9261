"""Retention tiers per tenant: how many days each tier keeps payloads, and which events go to
which tier (the seed's classification, overridden by rules on event type, agent, tool or tag).

A TOML file (docs/retention.md)::

    [tiers]                     # every tenant; the seed's defaults shown
    debug = 7
    info = 30
    compliance = 365
    critical = 730

    [[rules]]                   # first match wins; all keys given must match (globs)
    event_type = "agent.tool_*"
    tool = "payments.*"
    tier = "critical"

    [tenants.acme.tiers]        # per tenant: overrides of the days above
    debug = 3

    [[tenants.acme.rules]]      # per tenant: rules tried before the global ones
    tag = "pii=yes"
    tier = "debug"
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentaudit.events import TIERS, EventType, default_tier
from agentaudit.exceptions import ConfigError

__all__ = [
    "COMPLIANCE_MIN_DAYS",
    "CONFIG_ENV",
    "DEFAULT_DAYS",
    "EVIDENCE_TYPES",
    "RetentionConfig",
    "TenantPolicy",
    "TierRule",
    "load_config",
]

CONFIG_ENV = "AGENTAUDIT_RETENTION_CONFIG"
DEFAULT_DAYS: dict[str, int] = {"debug": 7, "info": 30, "compliance": 365, "critical": 730}
# EU AI Act Art. 19(1) and 26(6): logs of high-risk systems are kept at least six months.
COMPLIANCE_MIN_DAYS = 183
# Event types that are compliance evidence: those the seed files under compliance or critical.
EVIDENCE_TYPES = tuple(t.value for t in EventType
                       if default_tier(t.value) in ("compliance", "critical"))
_MAX_DAYS = 36_500
_RULE_KEYS = {"event_type", "agent", "tool", "tag", "tier"}
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


@dataclass(frozen=True)
class TierRule:
    """Events matching every given glob (event type, agent, tool = the event's action, tag
    ``key`` or ``key=value``) go to ``tier``."""

    tier: str
    event_type: str | None = None
    agent: str | None = None
    tool: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("event_type", self.event_type), ("agent", self.agent),
                                          ("tool", self.tool)) if v is not None]
        if self.tag_key is not None:
            parts.append(f"tag {self.tag_key}" + ("" if self.tag_value is None
                                                  else f"={self.tag_value}"))
        return " ".join(parts or ["every event"]) + f" -> {self.tier}"

    def may_hold_evidence(self) -> bool:
        """Whether compliance evidence (decisions, handoffs, errors, …) can match this rule."""
        if self.event_type is None:
            return True
        return any(fnmatch.fnmatchcase(t, self.event_type) for t in EVIDENCE_TYPES)


@dataclass(frozen=True)
class TenantPolicy:
    """The days per tier and the rules (tenant's first, then global) that apply to a tenant."""

    tenant: str
    days: dict[str, int]
    rules: tuple[TierRule, ...] = ()

    def warnings(self) -> list[str]:
        """One sentence per tier that holds compliance evidence for fewer than 183 days."""
        evidence: dict[str, str] = {"compliance": "the seed files decisions, handoffs and "
                                                  "human interventions there",
                                    "critical": "the seed files errors, security and compliance "
                                                "events there"}
        for rule in self.rules:
            if rule.may_hold_evidence() and rule.tier not in evidence:
                evidence[rule.tier] = f"rule '{rule.describe()}' can send evidence there"
        out = []
        for tier in TIERS:
            if tier in evidence and self.days[tier] < COMPLIANCE_MIN_DAYS:
                out.append(f"tenant {self.tenant!r}: tier {tier!r} keeps compliance evidence "
                           f"only {self.days[tier]} days ({evidence[tier]}); the EU AI Act "
                           f"(Art. 19, 26(6)) asks at least six months ({COMPLIANCE_MIN_DAYS} "
                           "days) for logs of high-risk systems")
        return out


@dataclass(frozen=True)
class RetentionConfig:
    """Global days and rules plus per-tenant overrides; ``source`` names the file."""

    days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    rules: tuple[TierRule, ...] = ()
    tenants: dict[str, tuple[dict[str, int], tuple[TierRule, ...]]] = field(default_factory=dict)
    source: str | None = None

    def policy(self, tenant: str) -> TenantPolicy:
        days, rules = self.tenants.get(tenant, ({}, ()))
        return TenantPolicy(tenant, {**self.days, **days}, rules + self.rules)

    def warnings(self, tenants: list[str] | None = None) -> list[str]:
        names = sorted({"default", *self.tenants} if tenants is None else set(tenants))
        return [w for t in names for w in self.policy(t).warnings()]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str | None = None) -> RetentionConfig:
        where = source or "retention config"
        unknown = set(data) - {"tiers", "rules", "tenants"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (expected tiers, rules, "
                              "tenants)")
        days = {**DEFAULT_DAYS, **_days(data.get("tiers", {}), f"{where} [tiers]")}
        rules = _rules(data.get("rules", []), f"{where} [[rules]]")
        tenants: dict[str, tuple[dict[str, int], tuple[TierRule, ...]]] = {}
        raw_tenants = data.get("tenants", {})
        if not isinstance(raw_tenants, dict):
            raise ConfigError(f"{where}: [tenants] must be a table of tenant names")
        for name, section in raw_tenants.items():
            if not isinstance(section, dict) or set(section) - {"tiers", "rules"}:
                raise ConfigError(f"{where}: [tenants.{name}] may hold only tiers and rules")
            tenants[name] = (_days(section.get("tiers", {}), f"{where} [tenants.{name}.tiers]"),
                             _rules(section.get("rules", []), f"{where} [tenants.{name}.rules]"))
        return cls(days, rules, tenants, source)


def _days(table: Any, where: str) -> dict[str, int]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of tier = days")
    out = {}
    for tier, days in table.items():
        if tier not in TIERS:
            raise ConfigError(f"{where}: unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
            raise ConfigError(f"{where}: {tier} = {days!r} must be a whole number of days "
                              f"between 1 and {_MAX_DAYS}")
        out[tier] = days
    return out


def _rules(items: Any, where: str) -> tuple[TierRule, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be an array of tables")
    rules = []
    for n, item in enumerate(items, 1):
        at = f"{where} #{n}"
        if not isinstance(item, dict):
            raise ConfigError(f"{at} must be a table")
        unknown = set(item) - _RULE_KEYS
        if unknown:
            raise ConfigError(f"{at}: unknown keys {sorted(unknown)} (expected "
                              f"{', '.join(sorted(_RULE_KEYS))})")
        tier = item.get("tier")
        if tier not in TIERS:
            raise ConfigError(f"{at}: tier must be one of {', '.join(TIERS)}, not {tier!r}")
        for key in ("event_type", "agent", "tool", "tag"):
            if key in item and (not isinstance(item[key], str) or not item[key]):
                raise ConfigError(f"{at}: {key} must be a non-empty string")
        if not set(item) - {"tier"}:
            raise ConfigError(f"{at}: give at least one of event_type, agent, tool, tag")
        tag_key = tag_value = None
        if "tag" in item:
            tag_key, _, rest = item["tag"].partition("=")
            tag_value = rest if "=" in item["tag"] else None
            if not _TAG_KEY.match(tag_key):
                raise ConfigError(f"{at}: tag key {tag_key!r} must be 1-128 of A-Z a-z 0-9 _ . -")
        rules.append(TierRule(tier, item.get("event_type"), item.get("agent"), item.get("tool"),
                              tag_key, tag_value))
    return tuple(rules)


def load_config(path: str | os.PathLike[str] | None = None) -> RetentionConfig:
    """The config at ``path``, else ``$AGENTAUDIT_RETENTION_CONFIG``, else the seed's defaults."""
    path = path or os.environ.get(CONFIG_ENV) or None
    if path is None:
        return RetentionConfig()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read retention config {str(path)!r}: {e}") from e
    return RetentionConfig.from_mapping(data, str(path))
