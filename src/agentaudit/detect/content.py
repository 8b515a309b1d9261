"""Rules on what an event carries: prompt-injection indicators and exfiltration of secrets/PII.

Exfiltration reuses the redactor's classification. Events are inspected as stored, so when
redaction at capture already masked the data the evidence is the ``redacted`` tag the redactor
left (``card:1,secret:2``) or its masks (``[EMAIL]``, ``pii:email:…``); with redaction off the
detectors of ``agentaudit.redact`` scan the params themselves. Values are never copied into the
firing, only their kinds.
"""

from __future__ import annotations

import re
from typing import Any

from agentaudit.detect._base import Rule, event_text
from agentaudit.detect.firing import Firing
from agentaudit.detect.injection import scan_text
from agentaudit.events import AuditEvent

__all__ = ["ExfiltrationRule", "PromptInjectionRule"]


class PromptInjectionRule(Rule):
    name = "prompt_injection"

    def __init__(self, settings: dict[str, Any], history: Any) -> None:
        super().__init__(settings, history)
        self.types = self.event_types = frozenset(settings["event_types"])
        self.only = frozenset(settings["patterns"]) or None
        self.max_chars = int(settings["max_text_chars"])

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type not in self.types:
            return []
        text = event_text(ev, self.max_chars)
        found = scan_text(text, self.only) if text else None
        if not found:
            return []
        where = {"agent.tool_result": f"the result of tool {ev.action!r}",
                 "agent.invocation": "the task input", "agent.llm_response": "model output",
                 "agent.handoff": "a handoff's context"}.get(ev.event_type, ev.event_type)
        ids = ", ".join(m.pattern for m in found)
        return [self.fire(
            ev, f"Prompt injection indicator in {where}",
            f"{where[0].upper()}{where[1:]} of {ev.agent_name} matches {ids}: "
            f"\u201c{found[0].excerpt}\u201d. Check whether the agent followed it.",
            [ev.event_id], f"{ev.trace_id or ev.event_id}",
            patterns=[m.pattern for m in found], excerpt=found[0].excerpt,
            event_type=ev.event_type, tool=ev.action)]


# Masks and pseudonyms the redactor writes, and the detectors' kinds.
_MASK = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN|SSN|IP|SECRET|REDACTED)\]|\bpii:([a-z]+):[0-9a-f]{12}")
_KIND = {"email": "email", "phone": "phone", "card_number": "card", "iban": "iban",
         "us_ssn": "ssn", "ipv4": "ip", "ipv6": "ip", "aws_access_key": "secret",
         "private_key": "secret", "jwt": "secret", "bearer_token": "secret", "api_key": "secret",
         "url_password": "secret", "redacted": "secret"}


def _counts(tag: str) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for part in tag.split(","):
        name, _, n = part.partition(":")
        if name and name != "failed":
            kind = "secret" if name == "field" else name
            kinds[kind] = kinds.get(kind, 0) + (int(n) if n.isdigit() else 1)
    return kinds


def classify(ev: AuditEvent, detectors: tuple[str, ...] | None = None) -> dict[str, int]:
    """Kinds of sensitive data in a stored event's params (counts), by the redactor's rules:
    the ``redacted`` tag redaction at capture left, the masks it wrote, or (redaction off) what
    the redactor's detectors (all, or ``detectors``) find in them now."""
    from agentaudit.redact import scan

    kinds = _counts((ev.tags or {}).get("redacted", ""))
    if kinds or not ev.params:
        return kinds
    text = event_text(ev, params_only=True)
    for m in _MASK.finditer(text):
        kind = (m.group(1) or m.group(2) or "").lower()
        kind = _KIND.get(kind, kind)
        kinds[kind] = kinds.get(kind, 0) + 1
    for f in scan(text, detectors):
        kind = _KIND.get(f.detector, f.detector)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


class ExfiltrationRule(Rule):
    name = "exfiltration"
    event_types = frozenset({"agent.tool_call"})

    def __init__(self, settings: dict[str, Any], history: Any) -> None:
        super().__init__(settings, history)
        self.tools = frozenset(settings["external_tools"])
        self.tag = settings["external_tag"]
        self.kinds = frozenset(settings["kinds"])
        self.detectors = tuple(d for d, k in _KIND.items() if k in self.kinds and d != "redacted")

    def _external(self, ev: AuditEvent) -> bool:
        if ev.action in self.tools:
            return True
        return bool(ev.tags) and ev.tags.get(self.tag, "").lower() in ("true", "1", "yes")

    def observe(self, ev: AuditEvent) -> list[Firing]:
        if ev.event_type != "agent.tool_call" or not self._external(ev):
            return []
        kinds = {k: n for k, n in classify(ev, self.detectors).items() if k in self.kinds}
        if not kinds:
            return []
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return [self.fire(
            ev, f"Sensitive data sent to external tool {ev.action!r}",
            f"{ev.agent_name} called the external tool {ev.action!r} with data the redactor "
            f"classifies as {listed}. Confirm the transfer was intended and allowed.",
            [ev.event_id], f"{ev.agent_name}|{ev.action}|{ev.trace_id or ev.event_id}",
            tool=ev.action, kinds=kinds)]
