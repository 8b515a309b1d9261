"""Integrity on the dashboard: the latest signed checkpoint, the verifier key to copy, "verify
now" (run in a background thread, polled for progress) and per-event inclusion proofs."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from agentaudit.exceptions import AuditError
from agentaudit.query import iso_time
from agentaudit.server.auth import Principal
from agentaudit.server.dashboard.session import check_csrf, page_headers, viewer
from agentaudit.server.dashboard.templating import render

__all__ = ["VerifyJob", "router"]

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
_MAX_JOBS = 20


@dataclass
class VerifyJob:
    """One "verify now" run: progress while it runs, the verifier's report when done."""

    tenant: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)
    done: int = 0
    total: int = 0
    state: str = "running"  # running, ok, damaged, failed
    message: str = ""
    report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "done": self.done, "total": self.total,
                "message": self.message, "report": self.report,
                "started": iso_time(self.started)}


def _jobs(request: Request) -> dict[str, VerifyJob]:
    state = request.app.state
    if not hasattr(state, "verify_jobs"):
        state.verify_jobs = {}
    jobs: dict[str, VerifyJob] = state.verify_jobs
    return jobs


def _run(url: str, job: VerifyJob) -> None:
    from agentaudit.integrity.verify import verify_log
    from agentaudit.store import open_store

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        store = open_store(url, create=False, readonly=True)
        try:
            report = verify_log(store, job.tenant, progress=progress)
        finally:
            store.close()
    except AuditError as e:
        job.state, job.message = "failed", str(e)
        return
    except Exception:  # never leak internals into the page
        job.state, job.message = "failed", "the verifier stopped with an internal error"
        return
    job.report = report.as_dict()
    job.done = job.total = report.size
    if report.ok:
        job.state = "ok"
        job.message = (f"the log of {report.size:,} events verifies against "
                       f"{report.checkpoints} signed checkpoint(s) in {report.seconds:.1f} s")
    else:
        job.state = "damaged"
        job.message = report.damage.message if report.damage else "damaged"


def _signers(note: str) -> list[dict[str, str]]:
    """Name and key id of each signature line of a signed note."""
    out = []
    for line in note.partition("\n\n")[2].splitlines():
        if line.startswith("— "):
            name, _, sig = line[2:].rpartition(" ")
            try:
                key_id = base64.b64decode(sig)[:4].hex()
            except ValueError:
                key_id = "?"
            out.append({"name": name, "key_id": key_id})
    return out


def _checkpoint(request: Request, tenant: str) -> dict[str, Any] | None:
    with request.app.state.collector.pool.store() as store:
        latest = store.latest_checkpoint(tenant)
        log_size = store.log_state(tenant)[0]
    if latest is None:
        return {"log_size": log_size, "size": None} if log_size else None
    size, root, note, at = latest
    return {"log_size": log_size, "size": size, "root": base64.b64encode(root).decode(),
            "time": iso_time(at), "note": note, "signers": _signers(note)}


def _verifier_key() -> tuple[str | None, str | None]:
    from agentaudit.integrity.verify import local_verifier_key

    try:
        return local_verifier_key(), None
    except (AuditError, OSError) as e:
        return None, f"the signing key of this machine cannot be read: {e}"


@router.get("/integrity")
def integrity_page(request: Request, principal: Viewer) -> Response:
    vkey, problem = _verifier_key()
    job_id = request.query_params.get("job", "")
    job = _jobs(request).get(job_id)
    if job is not None and job.tenant != principal.tenant:
        job = None
    return render(request, "integrity.html.j2", principal=principal, title="Integrity",
                  cp=_checkpoint(request, principal.tenant), vkey=vkey, vkey_problem=problem,
                  job=job, proof=None, proof_check=None, event_id="", proof_problem=None)


@router.post("/integrity/verify")
def start_verify(request: Request, principal: Viewer,
                 csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    if not check_csrf(request, csrf):
        return render(request, "message.html.j2", status_code=403, principal=principal,
                      title="Refused", message="This form is stale or came from another site: "
                      "reload the page and try again.")
    jobs = _jobs(request)
    running = [j for j in jobs.values() if j.tenant == principal.tenant and j.state == "running"]
    job = running[0] if running else VerifyJob(principal.tenant)
    if not running:
        for old in sorted(jobs.values(), key=lambda j: j.started)[:max(0, len(jobs) - _MAX_JOBS)]:
            jobs.pop(old.id, None)
        jobs[job.id] = job
        threading.Thread(target=_run, args=(request.app.state.collector.settings.db, job),
                         name="agentaudit-dashboard-verify", daemon=True).start()
    return RedirectResponse(f"/integrity?job={job.id}", status_code=303, headers=page_headers())


@router.get("/integrity/verify/{job_id}")
def verify_status(request: Request, principal: Viewer, job_id: str) -> Response:
    job = _jobs(request).get(job_id)
    if job is None or job.tenant != principal.tenant:
        return JSONResponse({"error": "no such verification"}, status_code=404,
                            headers=page_headers())
    return JSONResponse(job.as_dict(), headers=page_headers())


@router.get("/integrity/prove")
def prove_page(request: Request, principal: Viewer) -> Response:
    """The inclusion proof of one event against the latest checkpoint, checked here."""
    from agentaudit.integrity.prove import check_proof, prove_event

    event_id = request.query_params.get("event_id", "").strip()[:128]
    vkey, problem = _verifier_key()
    proof = check = proof_problem = None
    if event_id:
        try:
            with request.app.state.collector.pool.store() as store:
                proof = prove_event(store, principal.tenant, event_id)
            check = check_proof(proof, vkey) if vkey else None
        except AuditError as e:
            proof_problem = str(e)
    return render(request, "integrity.html.j2", principal=principal, title="Integrity",
                  cp=_checkpoint(request, principal.tenant), vkey=vkey, vkey_problem=problem,
                  job=None, proof=proof, proof_check=check, event_id=event_id,
                  proof_problem=proof_problem,
                  status_code=404 if proof_problem and "no event" in proof_problem else 200)
