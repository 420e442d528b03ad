"""Telemetry in tests: OpenTelemetry's SDK with an in-memory span exporter and metric reader, switched on once per test
session through bot.telemetry.export (the same instrumentation and scrubbing production gets); Azure Monitor is never
configured, and nothing leaves the process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram  # noqa: TID251 - the tests' own in-memory telemetry
from opentelemetry.sdk.metrics.export import (  # noqa: TID251 - the tests' own in-memory telemetry
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan  # noqa: TID251 - the tests' own in-memory telemetry
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: TID251 - the tests' own in-memory telemetry
    InMemorySpanExporter,
)

from bot.settings import Settings
from bot.telemetry import export

DataPoint = NumberDataPoint | HistogramDataPoint


@dataclass
class Recorded:
    """What Gradebot's telemetry recorded since the current test began (spans as exported, metrics as collected)."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    _collected: dict[str, list[DataPoint]] = field(default_factory=dict)

    def begin(self) -> None:
        """Forget what earlier tests recorded (counters and histograms are read as deltas)."""
        self.exporter.clear()
        self.reader.get_metrics_data()
        self._collected.clear()

    def spans(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def collect(self) -> dict[str, list[DataPoint]]:
        """Every metric's data points since the test began (gauges: their value now)."""
        data = self.reader.get_metrics_data()
        gauges: dict[str, list[DataPoint]] = {}
        for resource in data.resource_metrics if data is not None else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = [p for p in metric.data.data_points if isinstance(p, NumberDataPoint | HistogramDataPoint)]
                    if type(metric.data).__name__ == "Gauge":
                        gauges[metric.name] = points
                    else:
                        self._collected.setdefault(metric.name, []).extend(points)
        return {**self._collected, **gauges}

    def total(self, name: str, **attributes: Any) -> float:
        """The sum of a counter (or the count of a histogram) over the points carrying `attributes`."""
        points = [p for p in self.collect().get(name, []) if _carries(p.attributes, attributes)]
        return sum(p.count if isinstance(p, HistogramDataPoint) else p.value for p in points)

    def gauge(self, name: str) -> float | None:
        points = self.collect().get(name, [])
        return None if not points else float(points[-1].value)  # type: ignore[union-attr]


def _carries(attributes: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return all((attributes or {}).get(key) == value for key, value in wanted.items())


_recorded: Recorded | None = None


def in_memory_telemetry() -> Recorded:
    """Telemetry on for this process, into memory (the first call switches it on)."""
    global _recorded
    if _recorded is None:
        exporter = InMemorySpanExporter()
        reader = InMemoryMetricReader(
            preferred_temporality={Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
        )
        started = export.start(Settings.from_env({}), span_exporter=exporter, metric_reader=reader)
        assert started is not None, "telemetry was already switched on without the in-memory exporters"
        _recorded = Recorded(exporter, reader)
    return _recorded
