"""docs/reports.md documents every report, every compliance check and every policy key."""

from __future__ import annotations

from pathlib import Path

from agentaudit.redact import detector_names
from agentaudit.reports.policy import CHECK_NAMES, default_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "reports.md"


def test_every_check_and_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    policy = default_policy()
    for name in CHECK_NAMES:
        section = text.split(f"\n### {name}\n", 1)
        assert len(section) == 2, f"no section for the check {name}"
        body = section[1].split("\n### ", 1)[0]
        for key in policy.checks[name]:
            if key != "enabled":
                assert f"`{key}`" in body, f"{name}.{key} is not documented"
    for key in ("name", "evidence", "enabled"):
        assert f"`{key}`" in text
    for detector in detector_names():
        assert f"`{detector}`" in text


def test_every_report_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for command in ("summary", "tool-usage", "errors", "compliance", "daily", "cost", "agent"):
        assert f"## report {command}" in text
    assert "## forensics TRACE_OR_TASK_ID" in text
