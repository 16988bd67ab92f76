"""Prometheus metrics (prometheus-client), served at ``GET /metrics``.

One `Metrics` object per server process, with its own registry so that tests and several
in-process servers never share counters. The service, the HTTP layer and the event
dispatcher call the small methods below; nothing else touches prometheus-client.

With ``--workers N`` every worker process counts for itself and a scrape reaches one of
them. Setting ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) makes
every worker write to that directory and each scrape sums all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Request durations: from a HEAD on a warm cache (~1 ms) to a long PATCH (minutes).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = registry is None and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values live in files; the registry only collects them.
        self.registry = registry or CollectorRegistry(auto_describe=True)
        own = None if self.multiprocess else self.registry
        self.uploads_created = Counter("tuspluggy_uploads_created", "Uploads created.", registry=own)
        self.uploads_finished = Counter("tuspluggy_uploads_finished", "Uploads whose last byte was stored.", registry=own)
        self.uploads_terminated = Counter("tuspluggy_uploads_terminated", "Uploads removed by DELETE.", registry=own)
        self.bytes_received = Counter("tuspluggy_bytes_received", "Upload bytes stored.", registry=own)
        self.active_uploads = Gauge(
            "tuspluggy_active_uploads", "Requests storing upload bytes right now.", registry=own,
            multiprocess_mode="livesum",
        )
        self.requests = Counter(
            "tuspluggy_http_requests", "HTTP requests answered.", ["method", "status"], registry=own
        )
        self.request_seconds = Histogram(
            "tuspluggy_http_request_duration_seconds", "Time from request head to the end of the answer.",
            ["method"], buckets=DURATION_BUCKETS, registry=own,
        )
        self.hook_deliveries = Counter(
            "tuspluggy_hook_deliveries", "Hook deliveries by notifier, event and outcome (ok, rejected, failed).",
            ["notifier", "event", "outcome"], registry=own,
        )
        self.undelivered = Gauge(
            "tuspluggy_hook_events_undelivered", "Post-* events recorded but not yet delivered.", registry=own,
            multiprocess_mode="livesum",
        )
        self._counters = {
            "created": self.uploads_created,
            "finished": self.uploads_finished,
            "terminated": self.uploads_terminated,
            "bytes": self.bytes_received,
        }
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)

    # -- what the upload service calls --------------------------------------------

    def count(self, name: str, *labels: str, amount: float = 1) -> None:
        """A service event: "created", "finished", "terminated", "bytes" (amount = bytes),
        or "active" (amount +1 when a request starts storing bytes, -1 when it stops)."""
        if name == "active":
            self.active_uploads.inc(amount)
            return
        if amount:
            self._counters[name].inc(amount)

    # -- HTTP layer ----------------------------------------------------------------

    def request(self, method: str, status: int, seconds: float) -> None:
        self.requests.labels(method, str(status)).inc()
        self.request_seconds.labels(method).observe(seconds)

    # -- event dispatcher ----------------------------------------------------------

    def hook_delivery(self, notifier: str, event: str, outcome: str) -> None:
        """One delivery attempt: outcome is "ok", "rejected" (a pre-* hook said no) or "failed"."""
        self.hook_deliveries.labels(notifier, event, outcome).inc()

    def undelivered_from(self, source: Callable[[], float]) -> None:
        """Read the number of waiting events from `source` at every scrape (e.g. the outbox size)."""
        if self.multiprocess:  # a callback cannot be written to the shared files
            return
        self.undelivered.set_function(source)

    def set_undelivered(self, waiting: float) -> None:
        self.undelivered.set(waiting)

    # -- exposition ----------------------------------------------------------------

    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        return generate_latest(self.registry)
