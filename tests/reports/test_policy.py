"""Compliance policies: the shipped default, overrides, and bad files named by line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentaudit.reports.policy import (
    CHECK_NAMES,
    PolicyError,
    default_policy,
    line_of,
    load_policy,
)


def _write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy_holds_every_check() -> None:
    p = default_policy()
    assert p.enabled() == list(CHECK_NAMES)
    assert p.checks["error_rate"]["max"] == 0.05
    assert p.checks["token_budget"]["warn_at"] == 0.8
    assert load_policy(None).checks == p.checks


def test_overrides_keep_other_defaults(tmp_path: Path) -> None:
    p = load_policy(_write(tmp_path, '[policy]\nname = "strict"\nevidence = 3\n\n'
                                     "[checks.error_rate]\nmax = 0.01\n\n"
                                     "[checks.pii_scan]\nenabled = false\n"))
    assert (p.name, p.evidence) == ("strict", 3)
    assert p.checks["error_rate"] == {"max": 0.01, "warn_at": 0.8, "enabled": True}
    assert "pii_scan" not in p.enabled()
    assert p.checks["tool_approval"]["tools"][0] == "process_refund"


@pytest.mark.parametrize(("text", "message"), [
    ("[checks.error_rate]\nmax = 0.05\n\n[checks.nope]\nx = 1\n",
     r"policy.toml:4: unknown check 'nope'"),
    ("[checks.error_rate]\nwarn_at = 0.5\nmax = -1\n",
     r"policy.toml:3: checks.error_rate: max must not be negative \(-1\)"),
    ("# comment\n[checks.token_budget]\nwarn_at = 0.8\ndaily_tokens = 5\n",
     r"policy.toml:4: unknown key 'daily_tokens' in checks.token_budget"),
    ("[checks.human_escalation_rate]\nmin = 0.5\nmax = 0.2\n",
     r"policy.toml:2: checks.human_escalation_rate: min \(0.5\) is above max \(0.2\)"),
    ("[checks.error_rate]\nmax = 2\n", r"policy.toml:2: .*max is a ratio between 0 and 1"),
    ('[checks.tool_approval]\ntools = "process_refund"\n',
     r"policy.toml:2: .*tools must be a list of strings"),
    ('[checks.pii_scan]\ndetectors = ["email", "dna"]\n',
     r"policy.toml:2: .*unknown detector 'dna'"),
    ("[checks.token_budget]\nagents = { Research = -5 }\n",
     r"policy.toml:2: .*agents.Research must be a positive whole number"),
    ("[policy]\nevidence = true\n", r"policy.toml:2: policy.evidence must be a whole number"),
    ("[weird]\nx = 1\n", r"policy.toml:1: unknown section 'weird'"),
    ("[checks.error_rate\nmax = 1\n", r"policy.toml:1:\d+: "),
    ("[checks.error_rate]\nmax = = 1\n", r"policy.toml:2:\d+: "),
])
def test_bad_policies_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, text))


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "missing.toml")


def test_yaml_needs_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(PolicyError, match="reading YAML policies needs PyYAML"):
        load_policy(_write(tmp_path, "checks:\n  error_rate:\n    max: 0.1\n", "p.yaml"))


def test_yaml_policy(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    p = load_policy(_write(tmp_path, "checks:\n  error_rate:\n    max: 0.1\n", "p.yml"))
    assert p.checks["error_rate"]["max"] == 0.1
    with pytest.raises(PolicyError, match=r"p.yml:3: .*unknown key 'maxx'"):
        load_policy(_write(tmp_path, "checks:\n  error_rate:\n    maxx: 0.1\n", "p.yml"))


def test_line_of_understands_toml_and_yaml() -> None:
    toml = "[policy]\nname = 'x'\n\n[checks.pii_scan]\nmax_rows = 5\n"
    assert line_of(toml, "checks.pii_scan", "max_rows") == 5
    assert line_of(toml, "checks.pii_scan") == 4
    assert line_of(toml, "policy", "name") == 2
    yaml = "policy:\n  name: x\nchecks:\n  pii_scan:\n    max_rows: 5\n"
    assert line_of(yaml, "checks.pii_scan", "max_rows") == 5
    assert line_of(yaml, "checks.pii_scan") == 4
