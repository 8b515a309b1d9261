"""Reports on the dashboard: generate any report for a period, view it or download it as
md/html/json/csv, and the compliance checks with their evidence linked into the traces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from agentaudit.exceptions import AuditError, NotFound
from agentaudit.server.auth import Principal
from agentaudit.server.dashboard.session import viewer
from agentaudit.server.dashboard.templating import render

__all__ = ["KINDS", "router"]

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
KINDS = {"summary": "Summary", "tool-usage": "Tool usage", "errors": "Errors",
         "compliance": "Compliance", "daily": "Daily audit summary", "cost": "Cost",
         "agent": "One agent", "forensics": "Forensics of one trace"}
_MEDIA = {"json": "application/json", "md": "text/markdown; charset=utf-8",
          "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}
# A generated report is a self-contained page with inline CSS and SVG, and no script.
_REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class ReportForm:
    kind: str
    since: str
    until: str
    agent: str
    trace: str
    date: str

    @classmethod
    def of(cls, request: Request) -> ReportForm:
        q = request.query_params

        def get(name: str, default: str = "") -> str:
            return q.get(name, default).strip()[:256]

        return cls(kind=get("kind", "summary"), since=get("since", "24h"), until=get("until"),
                   agent=get("agent"), trace=get("trace"), date=get("date"))

    def params(self) -> dict[str, str]:
        return dict(self.__dict__)


def _builder(form: ReportForm, tenant: str) -> Callable[[Any], dict[str, Any]]:
    """The report function of ``form``, ready to run on a store; ``AuditError`` when the form
    is incomplete or unreadable."""
    from agentaudit import reports

    if form.kind not in KINDS:
        raise AuditError(f"unknown report {form.kind!r}: choose one of {', '.join(KINDS)}")
    agent = form.agent or None
    if form.kind == "forensics":
        if not form.trace:
            raise AuditError("the forensics report needs a trace id or task id")
        return lambda s: reports.forensics_report(s, tenant, form.trace)
    if form.kind == "daily":
        day = reports.parse_date(form.date or None)
        return lambda s: reports.daily_report(s, tenant, day, None, agent)
    period = reports.resolve_period(form.since or None, form.until or None)
    if form.kind == "agent":
        if not agent:
            raise AuditError("the agent report needs an agent name")
        return lambda s: reports.agent_report(s, tenant, agent, period)
    build = {"summary": reports.summary_report, "tool-usage": reports.tool_usage_report,
             "errors": reports.errors_report, "compliance": reports.compliance_report,
             "cost": reports.cost_report}[form.kind]
    return lambda s: build(s, tenant, period, agent)


def _generate(request: Request, form: ReportForm, tenant: str) -> dict[str, Any]:
    build = _builder(form, tenant)
    with request.app.state.collector.pool.store() as store:
        return build(store)


@router.get("/reports")
def reports_page(request: Request, principal: Viewer) -> Response:
    form = ReportForm.of(request)
    return render(request, "reports.html.j2", principal=principal, title="Reports", kinds=KINDS,
                  form=form.params(), formats=("html", "md", "json", "csv"), problem=None)


@router.get("/reports/view")
def report_view(request: Request, principal: Viewer) -> Response:
    """The report as ``fmt``: shown in the browser, or downloaded with ``download=1``."""
    from agentaudit.reports import render as render_report

    form = ReportForm.of(request)
    fmt = request.query_params.get("fmt", "html")
    try:
        if fmt not in _MEDIA:
            raise AuditError(f"unknown format {fmt!r}: choose html, md, json or csv")
        text = render_report(_generate(request, form, principal.tenant), fmt)
    except AuditError as e:
        return render(request, "reports.html.j2", principal=principal, title="Reports",
                      kinds=KINDS, form=form.params(), formats=("html", "md", "json", "csv"),
                      problem=str(e), status_code=404 if isinstance(e, NotFound) else 400)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
               "Content-Security-Policy": _REPORT_CSP}
    media = _MEDIA[fmt]
    if request.query_params.get("download") == "1":
        headers["Content-Disposition"] = f'attachment; filename="{form.kind}-report.{fmt}"'
    elif fmt != "html":
        media = "text/plain; charset=utf-8"  # readable in the browser, never executed
    return Response(text, media_type=media, headers=headers)


@router.get("/reports/compliance")
def compliance_page(request: Request, principal: Viewer) -> Response:
    """The compliance checks of a period; each piece of evidence links to its trace."""
    form = ReportForm.of(request)
    form = ReportForm("compliance", form.since, form.until, form.agent, "", "")
    try:
        report = _generate(request, form, principal.tenant)
    except AuditError as e:
        return render(request, "reports.html.j2", principal=principal, title="Reports",
                      kinds=KINDS, form=form.params(), formats=("html", "md", "json", "csv"),
                      problem=str(e), status_code=400)
    return render(request, "compliance.html.j2", principal=principal, title="Compliance",
                  r=report, form=form.params())
