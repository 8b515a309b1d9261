"""Evidence bundles: one zip file with selected events, a signed checkpoint, the verifier key and
inclusion proofs, that verifies offline on another machine with no database.

Layout (docs/formats.md)::

    README.md        what this is and how to check it
    manifest.json    format, tenant, selection, tree size, event count, whole_log
    checkpoint.note  the signed C2SP checkpoint every proof leads to
    verifier.key     the signer's verifier key (pin it with --vkey for real trust)
    events.jsonl     per event: envelope, payload (base64), salt (hex), erased, leaf_hash, proof
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentaudit.exceptions import ConfigError, NotFound, TamperDetected
from agentaudit.integrity.canonical import canonical_json
from agentaudit.integrity.checkpoint import parse_checkpoint, verify_note
from agentaudit.integrity.merkle import CompactRange, leaf_hash, verify_inclusion
from agentaudit.integrity.prove import merkle_cache
from agentaudit.integrity.verify import local_verifier_key, row_envelope

__all__ = ["BUNDLE_FORMAT", "BundleReport", "verify_bundle", "write_bundle"]

BUNDLE_FORMAT = "agentaudit-bundle/1"
_BAD_PROOF = "the inclusion proof does not lead to the signed root"

_README = """# agentaudit evidence bundle

This file proves that the events in `events.jsonl` are entries of an append-only, signed audit log
(an RFC 6962 Merkle tree whose head is the C2SP signed checkpoint in `checkpoint.note`).

Check it on any machine, without the database:

    agentaudit verify --bundle {name} --vkey '<the verifier key you trust>'

Without `--vkey` the key in `verifier.key` is used, which only proves the bundle is consistent
with itself; obtain the verifier key from its owner through another channel.

By hand (see docs/formats.md of agentaudit):
1. For each event: SHA-256(salt || base64-decoded payload) must equal envelope.payload_sha256
   (events whose payload was erased carry no payload or salt; their digest stays).
2. leaf = SHA-256(0x00 || JCS(envelope)) (RFC 8785 canonical JSON), equal to leaf_hash.
3. The inclusion proof of leaf at index envelope.seq must lead to the root of checkpoint.note
   (RFC 9162 section 2.1.3.2).
4. checkpoint.note must carry a valid Ed25519 signature of the verifier key (C2SP signed-note).
"""


@dataclass
class BundleReport:
    ok: bool
    events: int = 0
    tree_size: int = 0
    erased: list[str] = field(default_factory=list)
    problem: str | None = None
    event_id: str | None = None
    trusted_key: bool = False


def write_bundle(store: Any, tenant: str, rows: Iterable[tuple[Any, ...]], path: Path,
                 selection: dict[str, Any], vkey: str | None = None) -> int:
    """Write the rows (``LOG_COLUMNS``) with proofs to a zip at ``path``; returns the count.

    ``vkey`` is the verifier key of the log's signer that the bundle carries (default: this
    machine's, which must exist; a machine that only holds a copy of the log passes the
    signer's). Every event is checked as ``verify_bundle`` will check it (payload digest,
    leaf, inclusion proof against the checkpoint, whose signature is checked with ``vkey``)
    before the file exists: a store that does not verify raises ``TamperDetected`` naming the
    first bad event, and nothing is left at ``path``."""
    latest = store.latest_checkpoint(tenant)
    if latest is None:
        raise NotFound(f"tenant {tenant!r} has no signed checkpoint yet")
    size, _root, note, _at = latest
    own_key = vkey or local_verifier_key()
    if own_key is None:
        raise ConfigError("this machine holds no signing key: pass --vkey with the verifier key "
                          "of the machine that signed the log (`agentaudit checkpoint --vkey` "
                          "there), which the bundle will carry")
    if not verify_note(note, own_key):
        whose = "the given verifier key" if vkey else "this machine's key"
        raise TamperDetected("bad signature", f"the latest checkpoint of tenant {tenant!r} is "
                             f"not signed by {whose}; no bundle written (if the log is signed "
                             "on another machine, pass its key with --vkey; otherwise run "
                             "`agentaudit verify`)")
    cp = parse_checkpoint(note)
    cache = merkle_cache(store, tenant, size)
    state_size = store.log_state(tenant)[0]
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    seqs: list[int] = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            with zf.open("events.jsonl", "w") as out:
                for row in rows:
                    out.write(_checked_line(row, cache, cp))
                    seqs.append(row[1])
                    count += 1
            whole = seqs == list(range(size)) and state_size == size
            manifest = {"format": BUNDLE_FORMAT, "tenant": tenant, "created_at": time.time(),
                        "selection": selection, "tree_size": size, "events": count,
                        "whole_log": whole, "origin": cp.origin}
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            zf.writestr("checkpoint.note", note)
            zf.writestr("verifier.key", own_key + "\n")
            zf.writestr("README.md", _README.format(name=path.name))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def _checked_line(row: tuple[Any, ...], cache: Any, cp: Any) -> bytes:
    """The ``events.jsonl`` line of a ``LOG_COLUMNS`` row, checked as a recipient will."""
    seq, event_id = row[1], row[3]
    if seq >= cp.size:
        raise NotFound(f"event {event_id} (seq {seq}) is newer than the latest checkpoint; "
                       "run `agentaudit checkpoint --new` first")
    payload, salt = row[24], row[25]
    try:
        item = {
            "envelope": row_envelope(row),
            "payload": None if payload is None else base64.b64encode(payload).decode(),
            "salt": None if salt is None else salt.hex(),
            "erased": row[29] if payload is None else None,
            "leaf_hash": row[27].hex(),
            "inclusion_proof": [h.hex() for h in cache.inclusion_proof(seq, cp.size)],
        }
        line = json.dumps(item, separators=(",", ":")).encode() + b"\n"
    except (TypeError, ValueError, AttributeError) as e:
        problem: str | None = f"it holds a malformed value: {e}"
    else:
        problem = _check_item(line, cp)[0]
    if problem == _BAD_PROOF:  # the proof comes from the stored leaves of other events too
        raise TamperDetected("modified", f"the inclusion proof of event {event_id} (seq {seq}), "
                             "built from the stored Merkle leaves, does not lead to the signed "
                             "root: the store was altered; no bundle written (run `agentaudit "
                             "verify` to find where)", seq, event_id)
    if problem is not None:
        raise TamperDetected("modified", f"event {event_id} (seq {seq}) does not verify "
                             f"({problem}): the store was altered; no bundle written (run "
                             "`agentaudit verify`)", seq, event_id)
    return line


def verify_bundle(path: Path, vkey: str | None = None) -> BundleReport:
    """Check a bundle offline: payload digests, leaves, proofs, the checkpoint signature."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            note = zf.read("checkpoint.note").decode()
            own_key = zf.read("verifier.key").decode().strip()
            lines = zf.read("events.jsonl").splitlines()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path} is not a readable evidence bundle: {e}") from e
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: unknown bundle format {manifest.get('format')!r}")
    report = BundleReport(ok=False, trusted_key=vkey is not None)
    if not verify_note(note, vkey or own_key):
        report.problem = "the checkpoint is not signed by the " + (
            "given verifier key" if vkey else "bundle's verifier key")
        return report
    cp = parse_checkpoint(note)
    report.tree_size = cp.size
    leaves: list[bytes] = []
    for line in lines:
        problem, event_id, leaf, erased = _check_item(line, cp)
        if problem is not None:
            report.problem, report.event_id = problem, event_id
            return report
        leaves.append(leaf)
        if erased:
            report.erased.append(event_id or "")
        report.events += 1
    if report.events != manifest.get("events"):
        report.problem = f"the manifest lists {manifest.get('events')} events, the bundle has " \
                         f"{report.events}"
        return report
    if manifest.get("whole_log"):
        whole = CompactRange()
        whole.extend(leaves)
        if whole.size != cp.size or whole.root() != cp.root:
            report.problem = "the bundle claims the whole log but its events do not rebuild the root"
            return report
    report.ok = True
    return report


def _check_item(line: bytes, cp: Any) -> tuple[str | None, str | None, bytes, bool]:
    try:
        item = json.loads(line)
        env = item["envelope"]
        event_id = env.get("event_id")
        erased = item.get("payload") is None
        if not erased:
            payload = base64.b64decode(item["payload"], validate=True)
            salt = bytes.fromhex(item["salt"])
            if hashlib.sha256(salt + payload).hexdigest() != env["payload_sha256"]:
                return "the payload was altered", event_id, b"", erased
        leaf = leaf_hash(canonical_json(env))
        if leaf.hex() != item["leaf_hash"]:
            return "the envelope was altered", event_id, b"", erased
        proof = [bytes.fromhex(h) for h in item["inclusion_proof"]]
        if not verify_inclusion(leaf, env["seq"], cp.size, proof, cp.root):
            return _BAD_PROOF, event_id, b"", erased
        return None, event_id, leaf, erased
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return f"malformed event entry: {e}", None, b"", False
