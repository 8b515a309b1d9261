"""The same OpenAI Agents SDK run as ``openai_agents_otlp.py``, recorded in-process: the
OpenInference spans go through ``agentaudit.otel.AuditSpanExporter`` straight into a local
store, with no collector running.

    AGENTAUDIT_DB=audit.db python examples/openai_agents_inprocess.py
    agentaudit trace --db audit.db <the trace id printed>

No network and no API key (a scripted model, see ``support_agents.py``).
"""

from __future__ import annotations

import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support_agents import run_support_workflow

from agentaudit.otel import AuditSpanExporter


def main() -> int:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-desk"}))
    # store=None: the file named by AGENTAUDIT_DB, else ./agentaudit.db
    exporter = AuditSpanExporter(store=None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        answer = run_support_workflow(provider)
    finally:
        provider.shutdown()  # flushes the spans and closes the exporter's logger
    stats = exporter.logger.stats()
    print(answer)
    print(f"{stats.written} events stored (failed {stats.failed}, dropped {stats.dropped})")
    return 0 if not (stats.failed or stats.dropped) else 1


if __name__ == "__main__":
    sys.exit(main())
