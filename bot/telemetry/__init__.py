"""Telemetry: what every log line says about its turn, as JSON lines (context), Gradebot's own metrics (metrics), and
turning OpenTelemetry on — Azure Monitor when configured, otherwise nothing at all (export)."""
