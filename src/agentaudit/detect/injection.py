"""The maintained set of prompt-injection indicators.

Each ``Pattern`` has an id, what it indicates and a regex written to need the *imperative* shape
of an attack, not a mere mention: "ignore all previous instructions" matches, "the previous
instructions are in the manual" does not. ``scan_text`` also looks inside long base64 runs
(decoded and scanned again) and for invisible characters that hide text from a reader.

tests/detect/test_injection.py holds the positive and benign samples every pattern is tested
on; docs/detection.md gives the measured false-positive rate on the demo workload.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["PATTERNS", "InjectionMatch", "Pattern", "pattern_ids", "scan_text"]


@dataclass(frozen=True)
class Pattern:
    id: str
    description: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class InjectionMatch:
    """Pattern ``pattern`` matched ``excerpt`` (at most 120 characters) of the text."""

    pattern: str
    excerpt: str


_F = re.IGNORECASE | re.DOTALL
_GAP = r"[^.!?\n]{0,40}?"  # words in between, within one sentence

PATTERNS: tuple[Pattern, ...] = (
    Pattern("ignore_previous", "an order to ignore, forget or override earlier instructions",
            re.compile(r"\b(?:ignore|disregard|forget|override|bypass|skip)\b" + _GAP
                       + r"\b(?:all|any|every|previous|prior|above|earlier|preceding|original|"
                       r"your|the system|system)\b" + _GAP
                       + r"\b(?:instructions?|prompts?|rules|directives|guidelines|guardrails|"
                       r"restrictions|policies|programming)\b", _F)),
    Pattern("new_instructions", "replacement instructions addressed to the model",
            re.compile(r"\b(?:your\s+new\s+(?:instructions?|task|role|goal|objective)s?\s+"
                       r"(?:is|are|:)|new\s+system\s+(?:prompt|instructions?)\s*:|"
                       r"from\s+now\s+on,?\s+you\s+(?:are|will|must|shall)\b(?!\s+receive))",
                       _F)),
    Pattern("system_prompt_leak", "a request to reveal the system prompt or hidden instructions",
            re.compile(r"\b(?:reveal|print|show|repeat|output|leak|dump|disclose)\b" + _GAP
                       + r"\b(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|"
                       r"initial\s+instructions|original\s+prompt|secret\s+instructions)", _F)),
    Pattern("roleplay_jailbreak", "role-play jailbreak phrasing (DAN, developer mode, no limits)",
            re.compile(r"\b(?:you\s+are\s+now\s+(?:DAN|in\s+developer\s+mode|jailbroken|"
                       r"an?\s+(?:unrestricted|unfiltered|uncensored))|do\s+anything\s+now|"
                       r"developer\s+mode\s+(?:enabled|activated|on)|jailbreak\s+mode|"
                       r"(?:pretend|act|behave|roleplay)\s+(?:as|to\s+be|(?:that\s+)?you\s+are|you.re|like)"
                       + _GAP + r"\b(?:no|without|free\s+of)\s+(?:any\s+)?(?:restrictions|"
                       r"limits|limitations|filters|rules|guidelines|ethical))", _F)),
    Pattern("hidden_instruction", "instructions hidden for the model in tool or web content",
            re.compile(r"(?:<!--" + _GAP + r"\b(?:ignore|instruction|assistant|AI|LLM|you\s+"
                       r"must)\b[^>]{0,200}-->|\b(?:note|message|instructions?)\s+(?:to|for)\s+"
                       r"(?:the\s+)?(?:AI|LLM|assistant|language\s+model|agent)s?\s*[:,-]|"
                       r"<\|im_start\|>\s*system|\[/?(?:SYSTEM|INST)\]|"
                       r"^\s*#{1,3}\s*(?:system|assistant)\s*:)", _F | re.MULTILINE)),
    Pattern("exfil_markdown", "a markdown image or link that smuggles data to a URL",
            re.compile(r"!\[[^\]]{0,100}\]\(https?://[^\s)]{1,200}[?&][\w-]{1,30}="
                       r"(?:\{|\$|%7B|[^\s)&]{40,})", _F)),
    Pattern("invisible_text", "invisible characters (Unicode tags, zero-width runs) hiding text",
            re.compile("[\U000e0020-\U000e007f]{3,}|[\u200b\u200c\u200d\u2060\ufeff]{4,}")),
)

_BY_ID = {p.id: p for p in PATTERNS}
# The gate: every pattern needs one of these words (or markup checked apart), so a text
# without any of them is clean after a few C-speed steps instead of seven regex searches.
_ANCHORS = frozenset((
    "ignore", "ignoring", "disregard", "forget", "override", "bypass", "skip",  # ignore_previous
    "new", "now", "prompt", "instructions",  # new_instructions, system_prompt_leak
    "developer", "jailbreak", "jailbroken", "restrictions", "limits", "limitations", "filters",
    "rules", "guidelines", "ethical",  # roleplay_jailbreak
    "note", "instruction", "message", "im_start", "system", "inst", "/system", "/inst",
    "assistant",  # hidden_instruction
))
# Lower-case letters; punctuation becomes a space, except the characters of base64 (``+/=-_``)
# so that the same split finds the long tokens an encoded payload needs. One bytes.translate.
_PUNCT = "!\"#$%&'(),.:;<>?@[\\]^`{|}~\t\r\n"
_TABLE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _PUNCT.encode(),
                         b"abcdefghijklmnopqrstuvwxyz" + b" " * len(_PUNCT))
_ANCHOR_BYTES = frozenset(a.encode() for a in _ANCHORS)


def _gate(text: str) -> tuple[bool, bool]:
    """(may match a pattern, may hold an encoded payload): both False for most text, found
    with a few C-speed steps instead of seven regex searches."""
    if not text.isascii():
        return True, True  # invisible characters, or words the fast path would not split
    words = text.encode("ascii").translate(_TABLE).split()
    encoded = max(map(len, words), default=0) >= 40
    if "<!--" in text or "![" in text:
        return True, encoded
    return not _ANCHOR_BYTES.isdisjoint(words), encoded


_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{40,}={0,2}")


def pattern_ids() -> list[str]:
    """Ids of the pattern set, plus ``encoded_payload`` (a base64 run hiding a match)."""
    return [p.id for p in PATTERNS] + ["encoded_payload"]


def _excerpt(text: str, start: int, end: int) -> str:
    snippet = text[max(0, start - 20): min(len(text), end + 20)]
    return " ".join(snippet.split())[:120]


def _decoded_runs(text: str) -> list[str]:
    out = []
    for m in _B64_RUN.finditer(text):
        run = m.group(0)
        try:
            raw = base64.b64decode(run.replace("-", "+").replace("_", "/") + "=" * (-len(run) % 4),
                                   validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
        if decoded and printable / len(decoded) > 0.95:
            out.append(decoded)
    return out


def scan_text(text: str, only: frozenset[str] | None = None) -> list[InjectionMatch]:
    """Every pattern of the set (or of ``only``) that matches ``text``, once each."""
    found: list[InjectionMatch] = []
    anchored, encoded = _gate(text)
    if anchored:
        for p in PATTERNS:
            if only is not None and p.id not in only:
                continue
            m = p.regex.search(text)
            if m is not None:
                found.append(InjectionMatch(p.id, _excerpt(text, m.start(), m.end())))
    if encoded and (only is None or "encoded_payload" in only):
        for decoded in _decoded_runs(text):
            inner = scan_text(decoded, frozenset(_BY_ID) - {"invisible_text"})
            if inner:
                found.append(InjectionMatch("encoded_payload",
                                            f"base64 decodes to: {inner[0].excerpt}"))
                break
    return found
