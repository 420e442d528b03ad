"""Turning telemetry on: OpenTelemetry's SDK with the aiohttp server (incoming turns) and httpx (Graph calls)
instrumentations, exported to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set, or to the exporters a
test hands in; otherwise nothing is set up, nothing sent anywhere. Every span is scrubbed as it starts."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor  # noqa: TID251 - the one place that turns it on
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: TID251 - the one place that turns it on
from opentelemetry.sdk.metrics import MeterProvider  # noqa: TID251 - the one place that builds the SDK
from opentelemetry.sdk.metrics.export import MetricReader  # noqa: TID251 - the one place that builds the SDK
from opentelemetry.sdk.resources import Resource  # noqa: TID251 - the one place that builds the SDK
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider  # noqa: TID251 - the one place that builds the SDK
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter  # noqa: TID251 - the one place that builds the SDK

from bot.settings import Settings
from bot.telemetry.metrics import OUTBOX

log = logging.getLogger(__name__)

SERVICE_NAME = "gradebot"
URL_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.path")
"""Where the HTTP instrumentations put a URL or path (old and new semantic conventions)."""
COLLECTIONS = frozenset(
    {"classes", "assignments", "submissions", "outcomes", "users", "schools", "members", "teachers", "categories"}
    | {"resources", "submittedResources", "rubrics", "conversations", "activities"}
)
"""Path segments followed by an id (Graph's education collections, the Bot Connector's conversations)."""
_ID_LIKE = re.compile(r"(?=[^/]*\d)[^/$]{12,}")
"""A segment of 12 or more characters with a digit in it: a GUID, an opaque id (never a collection name)."""


def path_template(path: str) -> str:
    """`/v1.0/education/classes/8d3…/assignments/1f2…` → `/v1.0/education/classes/{id}/assignments/{id}`."""
    segments: list[str] = []
    after_collection = False
    for segment in path.split("/"):
        is_id = bool(segment) and not segment.startswith("$") and (after_collection or _ID_LIKE.fullmatch(segment))
        segments.append("{id}" if is_id else segment)
        after_collection = not is_id and segment in COLLECTIONS
    return "/".join(segments)


def scrubbed_url(url: str) -> str:
    """A URL (or a path) without query string or fragment (a sign-in link carries a signed token there, Graph's
    `$filter` and `$skiptoken` travel there too), its path as a template (`/classes/{id}/assignments`)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path_template(parts.path), "", ""))


class Scrubber(SpanProcessor):
    """Rewrites each span as it starts, before anything can export it: URLs without query strings or ids, and
    outgoing calls named `METHOD /path/{id}/template` (httpx names them by method alone)."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        attributes = span.attributes or {}
        for key in URL_ATTRIBUTES:
            if isinstance(value := attributes.get(key), str):
                span.set_attribute(key, scrubbed_url(value))
        if "url.query" in attributes:
            span.set_attribute("url.query", "")
        if span.kind is trace.SpanKind.CLIENT:
            url = attributes.get("url.full") or attributes.get("http.url")
            method = attributes.get("http.request.method") or attributes.get("http.method")
            if isinstance(url, str) and isinstance(method, str):
                span.update_name(f"{method} {scrubbed_url(urlsplit(url).path)}")


Providers = tuple[TracerProvider, MeterProvider]
_started: Providers | None = None


def start(
    settings: Settings, *, span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None
) -> Providers | None:
    """Turn telemetry on for this process, once: to the given exporters (tests: in memory), else to Azure Monitor
    when APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise do nothing and return None (telemetry off)."""
    global _started
    if _started is not None:
        return _started
    if span_exporter is not None or metric_reader is not None:
        _started = _local(span_exporter, metric_reader)
    elif settings.applicationinsights_connection_string:
        _started = _azure_monitor(settings.applicationinsights_connection_string)
    else:
        return None
    AioHttpServerInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    OUTBOX.observed = True
    return _started


def stop() -> None:
    """Send what is still buffered and stop exporting (nothing to do when telemetry is off)."""
    for provider in _started or ():
        provider.shutdown()


def _local(span_exporter: SpanExporter | None, metric_reader: MetricReader | None) -> Providers:
    resource = Resource.create({"service.name": SERVICE_NAME})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(Scrubber())
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    meter_provider = MeterProvider(metric_readers=[metric_reader] if metric_reader else [], resource=resource)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


AZURE_INSTRUMENTATIONS_OFF = (
    *("azure_sdk", "django", "fastapi", "flask", "httpx", "httpx2", "psycopg2", "requests", "urllib", "urllib3"),
)
"""The distro's own instrumentations, all off: Gradebot turns on aiohttp-server and httpx itself (after the
Scrubber is in place), and msal's, psycopg's and the Bot Connector's calls are not traced."""


def _azure_monitor(connection_string: str) -> Providers:
    from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: TID251 - imported only when configured

    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({"service.name": SERVICE_NAME}),
        span_processors=[Scrubber()],
        disable_logging=True,  # log lines go to stdout as JSON; the platform collects them
        enable_live_metrics=False,
        instrumentation_options={name: {"enabled": False} for name in AZURE_INSTRUMENTATIONS_OFF},
    )
    tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
    if not isinstance(tracer_provider, TracerProvider) or not isinstance(meter_provider, MeterProvider):
        raise RuntimeError("Azure Monitor did not set up OpenTelemetry's SDK providers")
    log.info("telemetry on: traces and metrics go to Azure Monitor")
    return tracer_provider, meter_provider
