"""Compliance policies as code: TOML (``tomllib``) or YAML (only when PyYAML is installed).

A policy overrides the shipped ``default_policy.toml``: checks and keys it leaves out keep their
defaults, ``enabled = false`` turns a check off. Every error names the file, the line and the
reason (``PolicyError``, exit code 2 on the command line).
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from agentaudit.exceptions import ConfigError

__all__ = ["CHECK_NAMES", "Policy", "PolicyError", "default_policy", "line_of", "load_policy",
           "parse_policy"]


class PolicyError(ConfigError):
    """A policy file cannot be read or says something impossible."""


DEFAULT_POLICY_FILE = "default_policy.toml"
# Keys whose values are ratios (0..1); every other number must merely be >= 0.
_RATIOS = {"min", "max", "warn_above", "warn_at"}


def _default_doc() -> dict[str, Any]:
    text = resources.files("agentaudit.reports").joinpath(DEFAULT_POLICY_FILE).read_text("utf-8")
    return tomllib.loads(text)


_DEFAULTS = _default_doc()
CHECK_NAMES: tuple[str, ...] = tuple(_DEFAULTS["checks"])


@dataclass
class Policy:
    """A validated policy: its name, evidence count, and each check's settings."""

    name: str = "default"
    evidence: int = 10
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "built-in default policy"

    def enabled(self) -> list[str]:
        return [n for n in CHECK_NAMES if self.checks[n].get("enabled", True)]


def default_policy() -> Policy:
    """The shipped policy."""
    return parse_policy({}, "", "built-in default policy")


# -- finding lines -------------------------------------------------------------------------------

_TOML_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?$")


def line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The 1-based line where ``key`` is set in ``table`` (dotted, ``checks.pii_scan``), or the
    table's own line; TOML headers and YAML indentation are both understood."""
    parts = [p.strip().strip('"') for p in table.split(".")] if table else []
    lines = text.splitlines()
    toml_table: list[str] | None = None
    yaml_path: list[tuple[int, str]] = []
    header_line = None
    for no, raw in enumerate(lines, 1):
        m = _TOML_HEADER.match(raw)
        if m:
            toml_table = [p.strip().strip('"') for p in m.group(1).split(".")]
            if toml_table == parts + ([key] if key else []):
                if key:
                    return no
                header_line = no
            continue
        stripped = raw.split("#", 1)[0].rstrip()
        if not stripped.strip():
            continue
        km = re.match(r"^(\s*)(?:-\s+)?\"?([A-Za-z0-9_\-]+)\"?\s*[:=]", stripped)
        if not km:
            continue
        indent, name = len(km.group(1)), km.group(2)
        if toml_table is not None:
            here = toml_table
        else:
            while yaml_path and yaml_path[-1][0] >= indent:
                yaml_path.pop()
            here = [p for _, p in yaml_path]
            yaml_path.append((indent, name))
            if here + [name] == parts and key is None:
                return no
        if key is not None and here == parts and name == key:
            return no
        if key is None and here == parts[:-1] and parts and name == parts[-1]:
            return no
    return header_line


# -- loading and validation ----------------------------------------------------------------------

def _fail(source: str, text: str, table: str, key: str | None, reason: str) -> PolicyError:
    line = line_of(text, table, key) if text else None
    where = f"{source}:{line}" if line else source
    return PolicyError(f"bad policy {where}: {reason}")


def _check_value(name: str, key: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot be the setting ``key`` of check ``name`` (None when it can)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{key} must be true or false"
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} must be a number, not {type(value).__name__}"
        if value < 0:
            return f"{key} must not be negative ({value})"
        if key == "daily_tokens_per_agent" and value == 0:
            return f"{key} must be at least 1"
        if key in _RATIOS and value > 1:
            return f"{key} is a ratio between 0 and 1, not {value}"
        if isinstance(default, int) and not isinstance(value, int) and key not in _RATIOS \
                and key != "min_amount":
            return f"{key} must be a whole number, not {value}"
        return None
    if isinstance(default, str):
        return None if isinstance(value, str) else f"{key} must be a string"
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{key} must be a list of strings"
        if key == "detectors":
            from agentaudit.redact import detector_names

            unknown = [v for v in value if v not in detector_names()]
            if unknown:
                return (f"unknown detector {unknown[0]!r}; known: "
                        f"{', '.join(detector_names())}")
        return None
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return f"{key} must be a table of agent = budget"
        for agent, budget in value.items():
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
                return f"{key}.{agent} must be a positive whole number of tokens"
        return None
    return None


def _merge_check(name: str, given: Any, source: str, text: str) -> dict[str, Any]:
    table = f"checks.{name}"
    if not isinstance(given, dict):
        raise _fail(source, text, "checks", name, f"{table} must be a table of settings")
    merged = copy.deepcopy(_DEFAULTS["checks"][name])
    merged.setdefault("enabled", True)
    for key, value in given.items():
        if key not in merged:
            known = ", ".join(sorted(merged))
            raise _fail(source, text, table, key, f"unknown key {key!r} in {table} "
                        f"(known: {known})")
        reason = _check_value(name, key, value, merged[key])
        if reason:
            raise _fail(source, text, table, key, f"{table}: {reason}")
        merged[key] = value
    for low, high in (("min", "max"), ("min", "warn_above"), ("warn_above", "max")):
        if low in merged and high in merged and merged[low] > merged[high]:
            raise _fail(source, text, table, low if low in given else high,
                        f"{table}: {low} ({merged[low]}) is above {high} ({merged[high]})")
    return merged


def parse_policy(doc: dict[str, Any], text: str = "", source: str = "policy") -> Policy:
    """A ``Policy`` from a parsed document (``text`` is its source, to name lines)."""
    if not isinstance(doc, dict):
        raise PolicyError(f"bad policy {source}: expected a table of [policy] and [checks.*]")
    for key in doc:
        if key not in ("policy", "checks"):
            raise _fail(source, text, "", key, f"unknown section {key!r} (use [policy] and "
                        "[checks.NAME])")
    head = doc.get("policy", {})
    if not isinstance(head, dict):
        raise _fail(source, text, "", "policy", "policy must be a table")
    for key in head:
        if key not in ("name", "evidence"):
            raise _fail(source, text, "policy", key, f"unknown key {key!r} in [policy] "
                        "(known: evidence, name)")
    evidence = head.get("evidence", _DEFAULTS["policy"]["evidence"])
    if isinstance(evidence, bool) or not isinstance(evidence, int) or not 0 <= evidence <= 1000:
        raise _fail(source, text, "policy", "evidence", "policy.evidence must be a whole "
                    "number between 0 and 1000")
    checks = doc.get("checks", {})
    if not isinstance(checks, dict):
        raise _fail(source, text, "", "checks", "checks must be a table of [checks.NAME]")
    for name in checks:
        if name not in CHECK_NAMES:
            raise _fail(source, text, f"checks.{name}", None, f"unknown check {name!r} "
                        f"(known: {', '.join(CHECK_NAMES)})")
    merged = {name: _merge_check(name, checks.get(name, {}), source, text)
              for name in CHECK_NAMES}
    return Policy(name=str(head.get("name", "custom" if doc else "default")),
                  evidence=evidence, checks=merged, source=source)


def _load_yaml(text: str, source: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError as e:
        raise PolicyError(f"bad policy {source}: reading YAML policies needs PyYAML "
                          "(pip install pyyaml); or write the policy in TOML") from e
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(e, "problem", None) or str(e)
        raise PolicyError(f"bad policy {where}: {problem}") from e


def load_policy(path: str | Path | None) -> Policy:
    """The policy in ``path`` (``.toml``, ``.yaml``/``.yml``), or the default when None."""
    if path is None:
        return default_policy()
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise PolicyError(f"cannot read the policy {source}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise PolicyError(f"bad policy {source}: not UTF-8 text") from e
    if source.lower().endswith((".yaml", ".yml")):
        doc = _load_yaml(text, source)
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
            where = f"{source}:{m.group(1)}:{m.group(2)}" if m else source
            raise PolicyError(f"bad policy {where}: {reason}") from e
    return parse_policy(doc, text, source)
