"""``verify``, ``checkpoint``, ``prove`` and ``export --bundle``: the proof that the record was not
altered. Exit codes of ``verify``: 0 intact, 1 damage found (named), 2 usage errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentaudit.cli.commands import open_reader, parse_period
from agentaudit.cli.errors import UsageProblem
from agentaudit.cli.output import check_choice, make_console
from agentaudit.exceptions import NotFound

__all__ = ["run_bundle_export", "run_checkpoint", "run_prove", "run_verify"]

_PROGRESS_FROM = 50_000  # show a progress bar on logs at least this long


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageProblem(f"cannot read the {what} {path}: {e.strerror or e}") from e


def _vkey_arg(vkey: str | None) -> str | None:
    """--vkey takes the key text or a file holding it."""
    if vkey is None:
        return None
    if "+" not in vkey and Path(vkey).exists():
        return _read_text(vkey, "verifier key file").strip()
    return vkey.strip()


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int, int], None] | None]:
    if total < _PROGRESS_FROM:
        yield None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    # the console prints text literally (no markup): the label is a plain text column
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TimeRemainingColumn(), console=make_console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, whole: int) -> None:
            bar.update(task, completed=done, total=max(whole, done))
        yield update


def run_verify(db: str | None, tenant: str, vkey: str | None, witness: str | None,
               bundle: str | None, fmt: str, workers: int | None = None) -> int:
    check_choice("--format", fmt, ("text", "json"))
    key = _vkey_arg(vkey)
    if bundle is not None:
        return _verify_bundle(Path(bundle), key, fmt)
    from agentaudit.integrity.verify import verify_log

    witness_note = _read_text(witness, "witness checkpoint") if witness else None
    store = open_reader(db)
    try:
        total = store.log_state(tenant)[0]  # type: ignore[attr-defined]
        if total == 0 and not store.checkpoints(tenant):  # type: ignore[attr-defined]
            raise NotFound(f"tenant {tenant!r} has no events in {db or 'the store'}")
        with _progress("verifying", total) as progress:
            report = verify_log(store, tenant, vkey=key, witness=witness_note,
                                progress=progress, workers=workers)
    finally:
        store.close()
    if fmt == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    return 0 if report.ok else 1


def _print_report(report: Any) -> None:
    rate = report.size / report.seconds if report.seconds else 0.0
    if report.ok:
        print(f"OK: the log of tenant {report.tenant!r} is intact: {report.size} events, "
              f"{report.checkpoints} signed checkpoints ({report.seconds:.2f} s, {rate:,.0f} "
              "events/s)")
    else:
        d = report.damage
        print(f"TAMPERED ({d.kind}): {d.message}")
        print(f"  first bad seq: {d.seq}  event_id: {d.event_id}")
    if report.erased:
        reasons: dict[str, int] = {}
        for _seq, _eid, reason in report.erased:
            reasons[reason] = reasons.get(reason, 0) + 1
        parts = ", ".join(f"{n} by {r}" for r, n in sorted(reasons.items()))
        print(f"  {len(report.erased)} payloads were erased ({parts}); their envelopes verify")
    if report.compacted:
        print(f"  the first {report.compacted} events were compacted by retention (envelopes "
              "dropped, leaf hashes kept); they verify as part of the tree")
    if report.ok and report.unsigned_tail:
        print(f"  note: the newest {report.unsigned_tail} events are not covered by a signed "
              "checkpoint yet (the writer signs one on every flush and close)")
    if report.witness_size is not None and report.ok:
        print(f"  consistent with the witness checkpoint of size {report.witness_size}")


def _verify_bundle(path: Path, key: str | None, fmt: str) -> int:
    from agentaudit.integrity.bundle import verify_bundle

    report = verify_bundle(path, key)
    if fmt == "json":
        print(json.dumps(report.__dict__, indent=2))
    elif report.ok:
        print(f"OK: bundle {path} verifies: {report.events} events included in the signed log "
              f"of size {report.tree_size}")
        if report.erased:
            print(f"  {len(report.erased)} events carry erased payloads; their envelopes verify")
        if not report.trusted_key:
            print("  warning: checked with the key inside the bundle; pass --vkey with the "
                  "verifier key you obtained from the log's owner to trust the signer",
                  file=sys.stderr)
    else:
        print(f"TAMPERED: {report.problem}" + (f" (event {report.event_id})"
                                               if report.event_id else ""))
    return 0 if report.ok else 1


def run_checkpoint(db: str | None, tenant: str, vkey: bool, new: bool) -> int:
    if vkey:
        from agentaudit.integrity.checkpoint import load_or_create_signing_key

        print(load_or_create_signing_key("agentaudit").verifier_key())
        return 0
    store = open_reader(db)
    try:
        if new:
            store.checkpoint(tenant)  # type: ignore[attr-defined]
        latest = store.latest_checkpoint(tenant)  # type: ignore[attr-defined]
    finally:
        store.close()
    if latest is None:
        raise NotFound(f"tenant {tenant!r} has no signed checkpoint yet")
    sys.stdout.write(latest[2])
    return 0


def run_prove(db: str | None, tenant: str, event_id: str, fmt: str) -> int:
    check_choice("--format", fmt, ("text", "json"))
    from agentaudit.integrity.prove import prove_event

    store = open_reader(db)
    try:
        doc = prove_event(store, tenant, event_id)
    finally:
        store.close()
    if fmt == "json":
        print(json.dumps(doc, indent=2))
        return 0
    print(f"event {doc['event_id']} is entry {doc['seq']} of the log of size "
          f"{doc['tree_size']} (root {doc['root_hash']})")
    print(f"leaf hash: {doc['leaf_hash']}")
    print("inclusion proof:")
    for h in doc["inclusion_proof"]:
        print(f"  {h}")
    print("signed checkpoint:")
    sys.stdout.write(doc["checkpoint"])
    return 0


def _checkpoint_head(store: Any, tenant: str) -> None:
    """Sign the log's head before bundling, when this machine holds the log's signing key."""
    from agentaudit.integrity.checkpoint import verify_note
    from agentaudit.integrity.verify import local_verifier_key

    latest = store.latest_checkpoint(tenant)
    if latest is not None and latest[0] >= store.log_state(tenant)[0]:
        return
    vkey = local_verifier_key()
    if vkey is not None and (latest is None or verify_note(latest[2], vkey)):
        store.checkpoint(tenant)


def run_bundle_export(db: str | None, tenant: str, bundle: str, since: str | None,
                      until: str | None, trace: str | None, agent: str | None = None,
                      vkey: str | None = None) -> int:
    from agentaudit.integrity.bundle import write_bundle
    from agentaudit.store.rows import LOG_COLUMNS

    at_seq, at_agent, at_ts = (LOG_COLUMNS.index(c) for c in ("seq", "agent_name", "timestamp"))
    start, end = parse_period(since, until)
    store = open_reader(db)
    try:
        _checkpoint_head(store, tenant)
        ids = None
        first = stop = None
        if trace is not None:
            events = store.trace_events(tenant, trace)
            if not events:
                raise NotFound(f"no trace or task {trace!r} in tenant {tenant!r}")
            ids = {e.seq for e in events if e.seq is not None}
            if ids:  # read only the part of the log they span
                first, stop = min(ids), max(ids) + 1
        elif start is not None or end is not None:  # the part of the log the period spans
            span = store.log_span(tenant, start, end)  # type: ignore[attr-defined]
            if span is None:
                raise NotFound("no events match the selection; no bundle written")
            first, stop = span

        lo = first or 0
        hi = stop if stop is not None else store.log_state(tenant)[0]  # type: ignore[attr-defined]

        def selected(progress: Callable[[int, int], None] | None) -> Iterator[tuple[Any, ...]]:
            for row in store.log_rows(tenant, start=first, stop=stop):  # type: ignore[attr-defined]
                ts, seq = row[at_ts], row[at_seq]
                if progress is not None and not seq % 1000:
                    progress(seq - lo, hi - lo)  # the part of the log read so far
                if ids is not None and seq not in ids:
                    continue
                if agent is not None and row[at_agent] != agent:
                    continue
                if (start is not None and ts < start) or (end is not None and ts >= end):
                    continue
                yield row

        selection = {"since": since, "until": until, "trace": trace, "agent": agent}
        with _progress("exporting with proofs", hi - lo) as progress:
            count = write_bundle(store, tenant, selected(progress), Path(bundle), selection,
                                 vkey=_vkey_arg(vkey))
    finally:
        store.close()
    if count == 0:
        Path(bundle).unlink(missing_ok=True)
        raise NotFound("no events match the selection; no bundle written")
    print(f"wrote {count} events with inclusion proofs to {bundle}", file=sys.stderr)
    return 0
