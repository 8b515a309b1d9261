"""Inclusion proofs of single events against a signed checkpoint, and their offline check.

A proof document carries everything a third party needs: the event's canonical envelope (the leaf
entry), the inclusion path, the signed checkpoint and the verifier key. ``check_proof`` needs
nothing else: no database, no agentaudit store.
"""

from __future__ import annotations

import base64
from typing import Any

from agentaudit.exceptions import NotFound
from agentaudit.integrity.canonical import canonical_json
from agentaudit.integrity.checkpoint import parse_checkpoint, verify_note
from agentaudit.integrity.merkle import leaf_hash, verify_inclusion
from agentaudit.integrity.verify import row_envelope

__all__ = ["check_proof", "merkle_cache", "prove_event"]


def merkle_cache(store: Any, tenant: str, size: int) -> Any:
    """A ``MerkleCache`` over the stored leaves and tile roots of a tenant's log."""
    from agentaudit.integrity._tiles import MerkleCache

    return MerkleCache(lambda a, b: store.leaf_hashes(tenant, a, b), size,
                       tiles=store.tile_roots(tenant))


def prove_event(store: Any, tenant: str, event_id: str) -> dict[str, Any]:
    """The inclusion proof of one event against the tenant's latest checkpoint."""
    row = store.log_row(tenant, event_id)
    if row is None:
        raise NotFound(f"no event {event_id} in tenant {tenant!r}")
    latest = store.latest_checkpoint(tenant)
    seq = row[1]
    if latest is None or latest[0] <= seq:
        raise NotFound(f"event {event_id} (seq {seq}) is not covered by a signed checkpoint yet; "
                       "run `agentaudit checkpoint --new` on the machine that holds the signing key")
    size, root, note, _at = latest
    proof = merkle_cache(store, tenant, size).inclusion_proof(seq, size)
    entry = canonical_json(row_envelope(row))
    return {
        "event_id": event_id,
        "tenant": tenant,
        "seq": seq,
        "leaf_entry": entry.decode(),
        "leaf_hash": leaf_hash(entry).hex(),
        "tree_size": size,
        "root_hash": base64.b64encode(root).decode(),
        "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": note,
    }


def check_proof(doc: dict[str, Any], vkey: str) -> tuple[bool, str]:
    """Check a proof document offline; (ok, reason)."""
    try:
        if not verify_note(doc["checkpoint"], vkey):
            return False, "the checkpoint is not signed by the given verifier key"
        cp = parse_checkpoint(doc["checkpoint"])
        if cp.size != doc["tree_size"] or base64.b64encode(cp.root).decode() != doc["root_hash"]:
            return False, "tree size or root does not match the signed checkpoint"
        entry = doc["leaf_entry"].encode()
        leaf = leaf_hash(entry)
        if leaf.hex() != doc["leaf_hash"]:
            return False, "the leaf hash does not match the leaf entry"
        env = _json_object(entry)
        if env.get("event_id") != doc["event_id"] or env.get("seq") != doc["seq"]:
            return False, "the leaf entry is for another event or position"
        path = [base64.b64decode(p, validate=True) for p in doc["inclusion_proof"]]
        if not verify_inclusion(leaf, doc["seq"], cp.size, path, cp.root):
            return False, "the inclusion proof does not lead to the signed root"
    except (KeyError, TypeError, ValueError) as e:
        return False, f"malformed proof document: {e}"
    return True, f"event {doc['event_id']} is entry {doc['seq']} of the log of size {cp.size}"


def _json_object(raw: bytes) -> dict[str, Any]:
    import json

    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("leaf entry is not a JSON object")
    return obj
