"""Detection rules as configuration: a TOML file merged over the packaged defaults.

Every rule has ``enabled``, ``severity``, ``kind`` (``security`` or ``compliance``: the event
type a firing writes) and ``suppress_seconds``; the rest are the rule's own thresholds. A key the
defaults do not have, a wrong type or a bad severity is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from agentaudit.exceptions import ConfigError

__all__ = ["RULE_NAMES", "SEVERITIES", "RuleSet", "default_rules", "load_rules",
           "severity_rank"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
KINDS = ("security", "compliance")
RULE_NAMES = ("prompt_injection", "exfiltration", "anomaly", "approval_required",
              "repeated_rejections", "budget", "handoff_loop", "acting_after_stop")
_COMMON = {"enabled": True, "severity": "medium", "kind": "security", "suppress_seconds": 0}


def severity_rank(severity: str) -> int:
    """0 for info .. 4 for critical."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class RuleSet:
    """The rules to run (``rules[name]`` is that rule's settings), the ``[detect]`` options and
    the ``[alerts]`` table (sinks of ``agentaudit serve``)."""

    rules: dict[str, dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    source: str = "default"

    def enabled(self) -> list[str]:
        return [n for n in RULE_NAMES if self.rules[n]["enabled"]]

    def rule(self, name: str) -> dict[str, Any]:
        return self.rules[name]


def _packaged() -> dict[str, Any]:
    text = resources.files("agentaudit.detect").joinpath("default_rules.toml").read_text("utf-8")
    return tomllib.loads(text)


def _check_type(where: str, default: Any, value: Any) -> None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{where} must be a {type(default).__name__}, not {value!r}")


def _merge_rule(name: str, base: dict[str, Any], given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"rules.{name} must be a table")
    merged = {**_COMMON, **base}
    for key, value in given.items():
        if key not in merged:
            raise ConfigError(f"unknown setting rules.{name}.{key}; known: "
                              f"{', '.join(sorted(merged))}")
        _check_type(f"rules.{name}.{key}", merged[key], value)
        merged[key] = value
    return merged


def _validate(name: str, rule: dict[str, Any]) -> None:
    if rule["severity"] not in SEVERITIES:
        raise ConfigError(f"rules.{name}.severity must be one of {', '.join(SEVERITIES)}, "
                          f"not {rule['severity']!r}")
    if rule["kind"] not in KINDS:
        raise ConfigError(f"rules.{name}.kind must be security or compliance, not "
                          f"{rule['kind']!r}")
    for key, value in rule.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"rules.{name}.{key} must not be negative, not {value!r}")
    if name == "repeated_rejections" and rule["scope"] not in ("trace", "agent"):
        raise ConfigError(f"rules.repeated_rejections.scope must be trace or agent, not "
                          f"{rule['scope']!r}")
    if name == "anomaly":
        unknown = set(rule["metrics"]) - {"tool_calls", "errors", "tokens"}
        if unknown:
            raise ConfigError(f"rules.anomaly.metrics: unknown metric(s) {sorted(unknown)}; "
                              "known: tool_calls, errors, tokens")
        if rule["bucket_seconds"] < 1 or rule["window_buckets"] < 2:
            raise ConfigError("rules.anomaly needs bucket_seconds >= 1 and window_buckets >= 2")
    if name == "prompt_injection" and rule["patterns"]:
        from agentaudit.detect.injection import pattern_ids

        unknown = set(rule["patterns"]) - set(pattern_ids())
        if unknown:
            raise ConfigError(f"rules.prompt_injection.patterns: unknown pattern(s) "
                              f"{sorted(unknown)}; known: {', '.join(pattern_ids())}")


def rules_from_mapping(data: dict[str, Any], source: str = "config") -> RuleSet:
    """The packaged defaults with ``data`` (a parsed rules file) merged over them."""
    defaults = _packaged()
    if not isinstance(data, dict):
        raise ConfigError("a rules file is a table")
    unknown = set(data) - {"detect", "rules", "alerts"}
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)} in the rules file; known: "
                          "detect, rules, alerts")
    given_rules = data.get("rules", {})
    if not isinstance(given_rules, dict):
        raise ConfigError("[rules] must be a table of rules")
    bad = set(given_rules) - set(RULE_NAMES)
    if bad:
        raise ConfigError(f"unknown rule(s) {sorted(bad)}; known: {', '.join(RULE_NAMES)}")
    rules = {}
    for name in RULE_NAMES:
        rule = _merge_rule(name, defaults["rules"][name], given_rules.get(name, {}))
        _validate(name, rule)
        rules[name] = rule
    options = copy.deepcopy(defaults["detect"])
    for key, value in data.get("detect", {}).items():
        if key not in options:
            raise ConfigError(f"unknown setting detect.{key}")
        _check_type(f"detect.{key}", options[key], value)
        options[key] = value
    alerts = {**defaults["alerts"], **data.get("alerts", {})}
    if not isinstance(alerts.get("sinks"), list):
        raise ConfigError("alerts.sinks must be a list of tables ([[alerts.sinks]])")
    return RuleSet(rules, options, alerts, source)


def default_rules() -> RuleSet:
    """The packaged rules (``agentaudit/detect/default_rules.toml``)."""
    return rules_from_mapping({}, "default")


def _load_yaml(path: str | os.PathLike[str]) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError as e:
        raise ConfigError(f"{str(path)!r} is YAML: install PyYAML (pip install pyyaml), or "
                          "write the rules in TOML") from e
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"cannot read rules file {str(path)!r}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"rules file {str(path)!r} is not valid YAML: {e}") from e


def load_rules(path: str | os.PathLike[str] | None) -> RuleSet:
    """Rules from a TOML (or, with PyYAML, YAML) file merged over the defaults (the defaults
    when ``path`` is None)."""
    if path is None or path == "":
        return default_rules()
    if str(path).endswith((".yaml", ".yml")):
        return rules_from_mapping(_load_yaml(path), str(path))
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read rules file {str(path)!r}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"rules file {str(path)!r} is not valid TOML: {e}") from e
    return rules_from_mapping(data, str(path))
