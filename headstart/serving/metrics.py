"""Prometheus metrics for operators: races, connections and how fast events reach viewers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """One registry per app, so several apps in one process (tests) do not collide."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.running = Gauge("headstart_races_running", "Races training now", registry=self.registry)
        self.queued = Gauge("headstart_races_queued", "Races waiting for a worker", registry=self.registry)
        self.workers = Gauge("headstart_workers", "Training workers alive, by state", ["state"], registry=self.registry)
        self.finished = Counter("headstart_races_finished", "Races that ended, by outcome", ["outcome"], registry=self.registry)
        self.connections = Gauge("headstart_websocket_connections", "Open websocket connections", registry=self.registry)
        self.event_latency = Histogram(
            "headstart_event_latency_seconds",
            "From the worker emitting an event to the server sending it to a viewer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
