"""The dashboard's Jinja2 environment and ``render``: a page with the dashboard's headers."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from agentaudit.query import iso_time
from agentaudit.reports.render import _ms, _num, _pct, _usd, _value
from agentaudit.server.dashboard.session import auth_disabled, csrf_token, page_headers

__all__ = ["STATUS", "render"]

# Status as icon and word, so that it reads without colour.
STATUS = {"ok": ("✔", "ok"), "error": ("✖", "error"), "warning": ("⚠", "warning"),
          "pass": ("✔", "pass"), "fail": ("✖", "fail"), "warn": ("⚠", "warn")}
NAV = [("/", "Overview"), ("/live", "Live feed"), ("/traces", "Traces"), ("/agents", "Agents"),
       ("/reports", "Reports"), ("/alerts", "Alerts"), ("/integrity", "Integrity")]


def _status(value: str) -> Any:
    from markupsafe import Markup, escape

    icon, word = STATUS.get(value, ("•", value))
    return Markup(f'<span class="status s-{escape(value)}"><span aria-hidden="true">{icon}</span> '
                  f"{escape(word)}</span>")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _qs(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentaudit.server.dashboard", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(value=_value, num=_num, pct=_pct, ms=_ms, usd=_usd, iso=iso_time, status=_status,
                       pretty=_pretty, short=lambda s, n=12: s if len(s or "") <= n else
                       s[:n] + "…")
    env.globals.update(qs=_qs, nav=NAV)
    return env


def render(request: Request, template: str, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    """``template`` rendered with the viewer's tenant, the CSRF token and the navigation."""
    principal = context.pop("principal", None)
    page = environment().get_template(template).render(
        request=request, path=request.url.path, csrf=csrf_token(request),
        tenant=principal.tenant if principal is not None else None,
        auth=not auth_disabled(request), **context)
    return HTMLResponse(page, status_code=status_code, headers=page_headers())
