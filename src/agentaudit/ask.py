"""``agentaudit ask "PHRASE"``: the seed's phrases, matched deterministically (no language model).

``PHRASES`` is the one routing table: each entry is an example phrase, the CLI command and MCP
tool it maps to, and a regular expression for it and its close variants. ``route`` turns a phrase
into the command's arguments; ``agentaudit.cli.assist_cmds`` runs them with the same functions
the CLI commands use. docs/mcp.md and the tests read the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PHRASES", "Phrase", "Route", "normalize", "period_of", "route"]

_UNITS = {"second": "s", "sec": "s", "minute": "m", "min": "m", "hour": "h", "hr": "h",
          "day": "d", "week": "w"}
_PERIOD = (r"(?:(?:in|over|from|during|for)\s+)?(?:the\s+)?(?:last|past)\s+"
           r"(?P<period>(?:\d+\s*)?(?:second|sec|minute|min|hour|hr|day|week)s?)")
_ID = r"(?P<id>[\w.:/@#-]+)"


def period_of(text: str | None) -> str | None:
    """``hour`` → ``1h``, ``24 hours`` → ``24h``, ``2 weeks`` → ``2w``; None for None."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+)?\s*([a-z]+?)s?", text.lower())
    if m is None or m[2] not in _UNITS:
        raise ValueError(f"cannot read the period {text!r}")
    return f"{m[1] or 1}{_UNITS[m[2]]}"


@dataclass(frozen=True)
class Phrase:
    """One phrase the assistant understands, the command it runs and its variants."""

    example: str
    command: str
    tool: str
    pattern: str
    variants: tuple[str, ...] = field(default=())

    def match(self, text: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, text, re.IGNORECASE)


PHRASES: tuple[Phrase, ...] = (
    Phrase("Show me the audit log", "log", "show_audit_log",
           r"(?:(?:show|display|print|view|open|get)\s+(?:me\s+)?(?:the\s+)?)?"
           r"(?:audit\s+)?log(?:s)?(?:\s+(?:of|for)\s+(?:agent\s+)?(?P<agent>(?!the\b)\w+))?"
           rf"(?:\s+{_PERIOD})?",
           ("show the audit log", "audit log", "show me the log for agent Billing",
            "show the audit log for the last hour")),
    Phrase("Trace task [id]", "trace", "trace_task",
           rf"trace\s+(?:the\s+)?(?:(?:task|trace)\s+)?{_ID}",
           ("Trace task 42", "trace task refund-incident", "trace refund-incident")),
    Phrase("Generate compliance report", "report compliance", "generate_compliance_report",
           r"(?:(?:generate|create|make|run|show|produce|give)\s+(?:me\s+)?(?:an?\s+|the\s+)?)?"
           rf"compliance(?:\s+report|\s+check)?(?:\s+{_PERIOD})?",
           ("generate a compliance report", "compliance report",
            "compliance report for the last 7 days")),
    Phrase("What did the agent do?", "session", "what_did_the_agent_do",
           r"what\s+did\s+(?:the\s+)?(?:agents?|(?P<agent>\w+))\s+do"
           r"(?:\s+in\s+(?:(?:the\s+)?session\s+(?P<session>[\w.:@#-]+)|"
           r"(?:the\s+)?(?:task|trace)\s+(?P<id>[\w.:@#-]+)))?",
           ("what did the agent do in session sess-1", "what did Billing do",
            "what did the agents do in task refund-incident")),
    Phrase("Show error summary", "errors", "show_error_summary",
           r"(?:(?:show|display|give|list|get)\s+(?:me\s+)?(?:the\s+|all\s+)?)?"
           r"(?:(?:error\s+summary|errors?|failures)(?:\s+summary)?)"
           r"(?:\s+(?:of|for)\s+(?:agent\s+)?(?P<agent>(?!the\b)\w+))?"
           rf"(?:\s+{_PERIOD})?",
           ("errors in the last hour", "errors in the last 24 hours", "show me the errors",
            "error summary for the last 7 days")),
    Phrase("Audit agent [name]", "agent", "audit_agent",
           rf"audit\s+(?:the\s+)?agent\s+(?P<agent>[\w.-]+)(?:\s+{_PERIOD})?",
           ("Audit agent Billing", "audit the agent Support over the last 2 days")),
    Phrase("Run forensic analysis", "forensics", "run_forensic_analysis",
           r"(?:run\s+(?:a\s+|the\s+)?)?forensics?(?:\s+analysis)?"
           r"(?:\s+(?:(?:on|of|for)\s+)?(?:the\s+)?(?:task\s+|trace\s+)?(?P<id>[\w.:@#-]+))?",
           ("Run forensic analysis on refund-incident", "forensics refund-incident",
            "run forensic analysis")),
    Phrase("Export audit data", "export", "export_audit_data",
           r"export\s+(?:the\s+|all\s+)?(?:audit\s+)?(?:data|log|events|trail)"
           r"(?:\s+(?:of|for)\s+(?:the\s+)?(?:task|trace)\s+(?P<id>[\w.:@#-]+))?"
           rf"(?:\s+{_PERIOD})?",
           ("export the audit log", "export audit data for task refund-incident",
            "export audit data for the last hour")),
    Phrase("Verify integrity", "verify", "verify_integrity",
           r"(?:verify|check)\s+(?:the\s+)?(?:integrity|log|audit\s+log|record|audit\s+trail)"
           r"(?:\s+integrity)?",
           ("check the integrity", "verify the audit log")),
)


@dataclass(frozen=True)
class Route:
    """What a phrase asks for: the CLI command and its keyword arguments."""

    phrase: Phrase
    args: dict[str, Any]


_FILLER = re.compile(r"^(?:(?:please|can\s+you|could\s+you|hey|ok|okay|agentaudit),?\s+)+"
                     r"|[\s,]+please$", re.IGNORECASE)


def normalize(text: str) -> str:
    """One line, no surrounding punctuation, quotes or politeness."""
    s = " ".join(text.split()).strip(" \"'“”‘’?!.")
    return _FILLER.sub("", s).strip(" ,?!.")


def route(text: str) -> Route | None:
    """The command that ``text`` asks for, or None when it is not one of ``PHRASES``."""
    s = normalize(text)
    for phrase in PHRASES:
        m = phrase.match(s)
        if m is None:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v}
        if "period" in groups:
            groups["period"] = period_of(groups["period"])
        return Route(phrase, groups)
    return None
