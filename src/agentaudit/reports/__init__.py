"""Reports over the audit log: summary, tool usage, errors, compliance, daily, cost, forensics
and one agent. Each returns a JSON-ready dict (the source of truth); ``render`` turns it into
Markdown, HTML or CSV. Aggregations run in SQL through the store's named aggregations.
"""

from __future__ import annotations

from agentaudit.reports.agent import agent_report
from agentaudit.reports.compliance import compliance_report
from agentaudit.reports.cost import PriceTable, cost_report, load_prices
from agentaudit.reports.daily import daily_report
from agentaudit.reports.errors import ErrorRules, errors_report
from agentaudit.reports.forensics import forensics_from_events, forensics_report
from agentaudit.reports.period import Period, day_period, parse_date, resolve_period
from agentaudit.reports.policy import Policy, PolicyError, default_policy, load_policy
from agentaudit.reports.render import FORMATS, render
from agentaudit.reports.summary import summary_report
from agentaudit.reports.tools import tool_usage_report

__all__ = [
    "FORMATS",
    "ErrorRules",
    "Period",
    "Policy",
    "PolicyError",
    "PriceTable",
    "agent_report",
    "compliance_report",
    "cost_report",
    "daily_report",
    "day_period",
    "default_policy",
    "errors_report",
    "forensics_from_events",
    "forensics_report",
    "load_policy",
    "load_prices",
    "parse_date",
    "render",
    "resolve_period",
    "summary_report",
    "tool_usage_report",
]
