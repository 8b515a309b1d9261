"""An OpenAI Agents SDK run, instrumented with OpenInference, exported over OTLP/HTTP to a
running collector (``agentaudit serve``).

    agentaudit serve --db audit.db &                      # listens on 127.0.0.1:4318
    agentaudit keys create --db audit.db --tenant acme --scope ingest   # prints aa_…
    export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces
    export OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-api-key=aa_…"
    python examples/openai_agents_otlp.py
    agentaudit log --db audit.db --tenant acme

The exporter is the standard ``opentelemetry-exporter-otlp-proto-http`` one, configured only by
the standard ``OTEL_EXPORTER_OTLP_*`` variables: nothing here is specific to agentaudit. The
agents run on a scripted model (see ``support_agents.py``): no network but the collector, no
API key.
"""

from __future__ import annotations

import os
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support_agents import run_support_workflow


def main() -> int:
    if not os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                          os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        print("set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces "
              "(and start `agentaudit serve`)", file=sys.stderr)
        return 2
    provider = TracerProvider(resource=Resource.create({"service.name": "support-desk"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    try:
        answer = run_support_workflow(provider)
    finally:
        provider.shutdown()  # flushes the batch: every span is sent before we exit
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
