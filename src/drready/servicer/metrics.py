"""Prometheus metrics of the running servicer (U2, D3, F5; issue 11 item 2: orders, deliveries,
silent resources, VTN latency, the schedule's job runs), served at ``GET /metrics``.

:class:`ServicerMetrics` owns one :class:`prometheus_client.CollectorRegistry` (no global
state: a test may build several services in one process) with

==============================================================  ==============================
metric                                                          what
==============================================================  ==============================
``drready_servicer_vtn_request_duration_seconds{method,op}``     histogram of the BL client's
                                                                requests to the VTN (until the
                                                                answer's headers)
``drready_servicer_vtn_request_failures_total{op,kind}``         ``kind``: ``unavailable`` (no
                                                                answer, or 5xx) or ``refused``
                                                                (4xx)
``drready_servicer_vtn_last_success_timestamp_seconds``          Unix time of the last answer
                                                                below 500
``drready_servicer_job_runs_total{job}``                         runs of each scheduled job
``drready_servicer_job_failures_total{job}``                     of which failed
``drready_servicer_orders{status}``                              orders per status (read from
                                                                the store at each scrape)
``drready_servicer_delivered_kwh{route}``                        delivered so far over every
                                                                order, by route
``drready_servicer_resources{route,state}``                      resources in the registry
``drready_servicer_silent_resources``                            resources offline: their VEN
                                                                left the VTN or a DR event went
                                                                unanswered (D3)
``drready_servicer_quarantined_reports_total{reason}``          VEN reports and resources set
                                                                aside (S1: not the client's,
                                                                not our event, unreadable,
                                                                implausible, refused), read
                                                                from the quarantine table
==============================================================  ==============================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from drready.servicer.storage.db import ResourceState
from drready.servicer.storage.store import ServicerStore

__all__ = ["CONTENT_TYPE", "ServicerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Media type of :meth:`ServicerMetrics.render` (Prometheus text format 0.0.4)."""

#: Histogram buckets of a VTN request [s]: a loopback round trip is milliseconds, a loaded VTN
#: across the internet a second or more; the client gives up at its timeout (10 s).
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PREFIX = "drready_servicer"


class _StoreCollector(Collector):
    """The gauges read from the servicer's store at each scrape."""

    def __init__(self, store: ServicerStore) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        orders = GaugeMetricFamily(
            f"{_PREFIX}_orders", "Orders of the north-bound API per status.", labels=["status"]
        )
        for status, n in self._store.order_counts().items():
            orders.add_metric([status.value], n)
        yield orders
        delivered = GaugeMetricFamily(
            f"{_PREFIX}_delivered_kwh",
            "Energy delivered so far over every order, by route (route i: gateway, "
            "route ii: cloud) [kWh].",
            labels=["route"],
        )
        by_route = self._store.delivered_by_route()
        for route in ("gateway", "cloud"):
            delivered.add_metric([route], by_route.get(route, 0.0))
        yield delivered
        resources = GaugeMetricFamily(
            f"{_PREFIX}_resources", "Resources in the registry.", labels=["route", "state"]
        )
        counts: dict[tuple[str, str], int] = {
            (route, state.value): 0 for route in ("gateway", "cloud") for state in ResourceState
        }
        for r in self._store.registry().list_resources():
            counts[(r.route.value, r.state.value)] += 1
        for (route, state), n in counts.items():
            resources.add_metric([route, state], n)
        yield resources
        yield GaugeMetricFamily(
            f"{_PREFIX}_silent_resources",
            "Resources offline: their VEN left the VTN or a DR event went unanswered.",
            value=sum(n for (_, state), n in counts.items() if state == ResourceState.OFFLINE),
        )
        quarantined = CounterMetricFamily(
            f"{_PREFIX}_quarantined_reports",
            "VEN reports and resources set aside instead of used, by reason (trust no peer).",
            labels=["reason"],
        )
        for reason, n in self._store.quarantine.counts().items():
            quarantined.add_metric([reason.value], n)
        yield quarantined


class ServicerMetrics:
    """The metrics of one running servicer (see the module docstring); ``now`` is the process
    clock, for :attr:`last_vtn_success_at`."""

    def __init__(self, store: ServicerStore, *, now: Callable[[], datetime]) -> None:
        self._now = now
        self.registry = CollectorRegistry(auto_describe=True)
        self.vtn_latency = Histogram(
            f"{_PREFIX}_vtn_request_duration_seconds",
            "Requests of the servicer's BL client to its VTN, until the answer's headers [s].",
            ["method", "op"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.vtn_failures = Counter(
            f"{_PREFIX}_vtn_request_failures",
            "VTN requests without an answer or with a 5xx (unavailable), or refused (4xx).",
            ["op", "kind"],
            registry=self.registry,
        )
        self.job_runs = Counter(
            f"{_PREFIX}_job_runs", "Runs of each scheduled job.", ["job"], registry=self.registry
        )
        self.job_failures = Counter(
            f"{_PREFIX}_job_failures",
            "Failed runs of each scheduled job.",
            ["job"],
            registry=self.registry,
        )
        self._last_success_s: float | None = None
        self.last_vtn_success_at: datetime | None = None
        """The process clock's instant of the last VTN answer below 500 (``now`` given)."""
        self.registry.register(_StoreCollector(store))
        self.registry.register(_LastSuccess(self))

    def observe_vtn(self, method: str, op: str, seconds: float, status: int | None) -> None:
        """Record one VTN request (an :data:`~drready.servicer.bl.VtnObserver`)."""
        self.vtn_latency.labels(method=method, op=op).observe(seconds)
        if status is None or status >= 500:
            self.vtn_failures.labels(op=op, kind="unavailable").inc()
        else:
            self._last_success_s = time.time()
            self.last_vtn_success_at = self._now()
            if status >= 400:
                self.vtn_failures.labels(op=op, kind="refused").inc()

    @property
    def last_vtn_success_s(self) -> float | None:
        """Unix time of the last VTN answer below 500, or ``None``."""
        return self._last_success_s

    def job_done(self, job: str, *, ok: bool) -> None:
        """Count a run of a scheduled job."""
        self.job_runs.labels(job=job).inc()
        if not ok:
            self.job_failures.labels(job=job).inc()

    def render(self) -> bytes:
        """The exposition text (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class _LastSuccess(Collector):
    def __init__(self, metrics: ServicerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        value = self._metrics.last_vtn_success_s
        yield GaugeMetricFamily(
            f"{_PREFIX}_vtn_last_success_timestamp_seconds",
            "Unix time of the last answer of the VTN below 500 (0: none yet).",
            value=0.0 if value is None else value,
        )
