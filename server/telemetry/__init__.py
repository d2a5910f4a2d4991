"""Telemetry: OpenTelemetry metrics and traces, the `/metrics` scrape, structured logs.

`setup` builds a worker's providers from the settings; `http_metrics` is the gate's
request histogram; `instruments` the observable ones; `prometheus` the scrape across
workers; `tracing` W3C trace context; `redis` the measured Redis client; `logs` the log
formats and the request's log context.
"""
