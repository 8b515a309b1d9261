"""``verify_log``: recompute a tenant's whole log from its stored rows and check it against the
signed checkpoints (and optionally a witness checkpoint saved earlier).

Every leaf is recomputed from the envelope columns and the payload digest; every payload digest
from salt and payload; every checkpoint root from the recomputed leaves; every signature with a
trusted verifier key. The first damage found is named with its seq, event id and kind.
"""

from __future__ import annotations

import hashlib
import operator
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from agentaudit.exceptions import ConfigError
from agentaudit.integrity.checkpoint import (
    default_key_path,
    load_or_create_signing_key,
    parse_checkpoint,
    verify_note,
)
from agentaudit.integrity.merkle import CompactRange, leaf_hash
from agentaudit.store.log import (
    ENVELOPE_FIELDS,
    entry_from_values,
    envelope_from_values,
    origin_for,
)
from agentaudit.store.rows import LOG_COLUMNS

__all__ = ["DAMAGE_KINDS", "Damage", "VerifyReport", "local_verifier_key", "row_envelope",
           "verify_log"]

DAMAGE_KINDS = ("modified", "missing", "inserted", "reordered", "truncated", "bad signature",
                "inconsistent with witness")


@dataclass(frozen=True)
class Damage:
    """The first problem found: what kind, where, and a sentence for people."""

    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None


@dataclass
class VerifyReport:
    tenant: str
    size: int = 0
    checkpoints: int = 0
    latest_checkpoint_size: int = 0
    erased: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, event_id, reason)
    unsigned_tail: int = 0
    compacted: int = 0  # leading events whose envelopes retention dropped (leaves kept)
    witness_size: int | None = None
    damage: Damage | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.damage is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "ok": self.ok, "size": self.size,
            "checkpoints": self.checkpoints, "latest_checkpoint_size": self.latest_checkpoint_size,
            "unsigned_tail": self.unsigned_tail, "witness_size": self.witness_size,
            "compacted": self.compacted,
            "erased": [{"seq": s, "event_id": e, "reason": r} for s, e, r in self.erased],
            "damage": None if self.damage is None else self.damage.__dict__,
            "seconds": round(self.seconds, 3),
        }


def local_verifier_key() -> str | None:
    """The verifier key of this machine's signing key, if one exists (never creates one)."""
    if os.environ.get("AGENTAUDIT_SIGNING_KEY") or default_key_path().exists():
        return load_or_create_signing_key("agentaudit").verifier_key()
    return None


_payload_decoder = msgspec.json.Decoder()
# Positions of the envelope's fields in a LOG_COLUMNS row.
_row_values = operator.itemgetter(*(LOG_COLUMNS.index(f) for f in ENVELOPE_FIELDS))
_SEQ, _EVENT_ID, _USER_ID, _TIER = (LOG_COLUMNS.index(c) for c in
                                    ("seq", "event_id", "user_id", "tier"))
_PAYLOAD, _SALT, _DIGEST, _LEAF, _ERASED = (LOG_COLUMNS.index(c) for c in (
    "payload", "salt", "payload_sha256", "leaf_hash", "erased"))


def row_envelope(row: tuple[Any, ...], seq: int | None = None) -> dict[str, Any]:
    """The envelope of a stored row (``LOG_COLUMNS`` order), optionally placed at another seq."""
    return envelope_from_values(_row_values(row), row[_SEQ] if seq is None else seq, row[_TIER],
                                row[_DIGEST].hex())


def _leaf_for(row: tuple[Any, ...], seq: int) -> bytes:
    return leaf_hash(entry_from_values(_row_values(row), seq, row[_TIER], row[_DIGEST].hex()))


class _Verifier:
    def __init__(self, store: Any, tenant: str, vkey: str, witness: str | None,
                 progress: Callable[[int, int], None] | None) -> None:
        self.store = store
        self.tenant = tenant
        self.vkey = vkey
        self.witness = witness
        self.progress = progress
        self.report = VerifyReport(tenant)

    def fail(self, kind: str, message: str, seq: int | None = None,
             event_id: str | None = None) -> VerifyReport:
        self.report.damage = Damage(kind, message, seq, event_id)
        return self.report

    def run(self) -> VerifyReport:
        store, tenant, report = self.store, self.tenant, self.report
        origin = origin_for(store.log_id, tenant)
        cps = store.checkpoints(tenant)
        report.checkpoints = len(cps)
        for size, root, note, _at in cps:
            if not verify_note(note, self.vkey):
                return self.fail("bad signature", f"checkpoint at size {size} is not signed by "
                                 "the trusted key", seq=size - 1 if size else None)
            try:
                cp = parse_checkpoint(note)
            except ValueError as e:
                return self.fail("bad signature", f"checkpoint at size {size}: {e}")
            if cp.origin != origin or cp.size != size or cp.root != root:
                return self.fail("bad signature", f"checkpoint row at size {size} does not match "
                                 "its signed note (origin, size or root)")
        witness_cp = None
        if self.witness is not None:
            if not verify_note(self.witness, self.vkey):
                return self.fail("bad signature", "the witness checkpoint is not signed by the "
                                 "trusted key")
            witness_cp = parse_checkpoint(self.witness)
            report.witness_size = witness_cp.size
            if witness_cp.origin != origin:
                return self.fail("inconsistent with witness", f"witness is for log "
                                 f"{witness_cp.origin!r}, not {origin!r}")
        state_size, frontier = store.log_state(tenant)
        total = max(state_size, cps[-1][0] if cps else 0)
        damage = self._scan(cps, witness_cp, total)
        if damage is not None:
            return damage
        n = report.size
        if cps and cps[-1][0] > n:
            return self.fail("truncated", f"the log ends at size {n} but a signed checkpoint "
                             f"covers {cps[-1][0]} events", seq=n)
        if witness_cp is not None and witness_cp.size > n:
            return self.fail("inconsistent with witness", f"the log has {n} events but the "
                             f"witness saw {witness_cp.size}: it was truncated or rolled back",
                             seq=n)
        if n < state_size:
            return self.fail("truncated", f"the log ends at size {n} but the store recorded "
                             f"{state_size} events", seq=n)
        if n > state_size:
            return self.fail("inserted", f"{n - state_size} rows beyond the recorded log size "
                             f"{state_size}", seq=state_size)
        if frontier is not None and CompactRange.from_bytes(frontier).root() != self.crange.root():
            return self.fail("modified", "the stored log state does not match the events")
        report.latest_checkpoint_size = cps[-1][0] if cps else 0
        report.unsigned_tail = n - report.latest_checkpoint_size
        return report

    def _scan(self, cps: list[tuple[int, bytes, str, float]], witness: Any,
              total: int) -> VerifyReport | None:
        self.crange = crange = CompactRange()
        sha256 = hashlib.sha256
        cp_i, expected, prev_cp = 0, 0, 0
        first_after_cp: str | None = None
        compacted = getattr(self.store, "compacted_leaf_hashes", None)
        if compacted is not None:  # a prefix compacted by retention: leaf hashes only
            for seq, leaf in compacted(self.tenant):
                if seq != expected:
                    return self.fail("missing", f"compacted leaf {expected} is missing",
                                     seq=expected)
                crange.append(leaf)
                expected += 1
                if witness is not None and witness.size == expected and (
                        crange.root() != witness.root):
                    return self.fail("inconsistent with witness", "the compacted events differ "
                                     "from what the witness saw", seq=expected - 1)
                while cp_i < len(cps) and cps[cp_i][0] == expected:
                    if crange.root() != cps[cp_i][1]:
                        return self.fail("modified", f"compacted leaves {prev_cp}..{expected - 1}"
                                         f" do not match the checkpoint at size {expected}",
                                         seq=prev_cp)
                    prev_cp, cp_i = expected, cp_i + 1
            self.report.compacted = expected
        for row in self.store.log_rows(self.tenant):
            seq, event_id = row[_SEQ], row[_EVENT_ID]
            if type(seq) is not int or seq < expected:
                return self.fail("inserted", f"event {event_id} has seq {seq!r}, which is "
                                 "already taken or not an integer", seq=expected, event_id=event_id)
            if seq > expected:
                return self.fail("missing", f"seq {expected} is missing (deleted); the next "
                                 f"event is {event_id} at seq {seq}", seq=expected,
                                 event_id=event_id)
            payload, salt, digest = row[_PAYLOAD], row[_SALT], row[_DIGEST]
            stored_leaf, erased = row[_LEAF], row[_ERASED]
            if not isinstance(digest, bytes) or len(digest) != 32:
                return self.fail("modified", f"event {event_id} has no payload digest",
                                 seq=seq, event_id=event_id)
            if payload is None and salt is None:
                if row[_USER_ID] is not None:
                    return self.fail("modified", f"event {event_id}: user_id kept after its "
                                     "payload was erased", seq=seq, event_id=event_id)
                self.report.erased.append((seq, event_id, erased or "unknown"))
            elif (not isinstance(payload, bytes) or not isinstance(salt, bytes)
                  or sha256(salt + payload).digest() != digest):
                return self.fail("modified", f"the payload of event {event_id} was altered",
                                 seq=seq, event_id=event_id)
            elif row[_USER_ID] != _user_of(payload):
                return self.fail("modified", f"event {event_id}: the user_id column does not "
                                 "match its payload", seq=seq, event_id=event_id)
            try:
                leaf = _leaf_for(row, seq)
            except (TypeError, ValueError) as e:
                return self.fail("modified", f"event {event_id} holds a malformed value: {e}",
                                 seq=seq, event_id=event_id)
            if leaf != stored_leaf:
                return self._mismatch(row, seq)
            if first_after_cp is None:
                first_after_cp = event_id
            crange.append(leaf)
            expected += 1
            if witness is not None and witness.size == expected and crange.root() != witness.root:
                return self.fail("inconsistent with witness", "the first "
                                 f"{expected} events differ from what the witness saw: the log "
                                 "was rewritten", seq=expected - 1, event_id=event_id)
            while cp_i < len(cps) and cps[cp_i][0] == expected:
                if crange.root() != cps[cp_i][1]:
                    return self.fail("modified", f"events {prev_cp}..{expected - 1} do not match "
                                     f"the checkpoint at size {expected}", seq=prev_cp,
                                     event_id=first_after_cp)
                prev_cp, first_after_cp = expected, None
                cp_i += 1
            if self.progress is not None and expected % 10_000 == 0:
                self.progress(expected, total)
        self.report.size = expected
        if self.progress is not None:
            self.progress(expected, total)
        return None

    def _mismatch(self, row: tuple[Any, ...], seq: int) -> VerifyReport:
        """A row's recomputed leaf differs from its stored one: moved, or modified?"""
        event_id, stored = row[_EVENT_ID], row[_LEAF]
        for other in range(max(0, seq - 1000), seq + 1000):
            if other != seq and _leaf_for(row, other) == stored:
                return self.fail("reordered", f"event {event_id} sits at seq {seq} but was "
                                 f"logged at seq {other}", seq=seq, event_id=event_id)
        return self.fail("modified", f"the envelope of event {event_id} was altered",
                         seq=seq, event_id=event_id)


def _user_of(payload: bytes) -> Any:
    if b'"user_id"' not in payload:  # cheap: most payloads name no user
        return None
    return _payload_decoder.decode(payload).get("user_id")


def verify_log(store: Any, tenant: str = "default", *, vkey: str | None = None,
               witness: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Verify one tenant's log. ``vkey`` defaults to this machine's signing key."""
    vkey = vkey or local_verifier_key()
    if not vkey:
        raise ConfigError("no verifier key: pass --vkey (the key printed by "
                          "`agentaudit checkpoint --vkey` on the machine that signed the log)")
    start = time.perf_counter()
    report = _Verifier(store, tenant, vkey, witness, progress).run()
    report.seconds = time.perf_counter() - start
    return report
