"""Metrics per connection, for the operations dashboard (template.yaml `OperationsDashboard`).

Powertools `Metrics` flushes one dimension set per invocation, and one SQS batch, poll or reconciliation tick serves
several connections. What the dashboard shows per connection is therefore kept here, per dimension set, and emitted
once per invocation (`flush_connection_metrics`: the workers' `consume_changes` and the scheduled and webhook
handlers' `flushes_connection_metrics`) as one EMF blob per set, each through its own Powertools `EphemeralMetrics`
(Powertools' documented "Metrics isolation", for multi-tenant dimensions). Not `single_metric`: it holds one metric
per blob and prints even when POWERTOOLS_METRICS_DISABLED is set, which must keep the local stack quiet.

Dimensions: `connection` (a stack serves a few connections) plus at most one of `concern` (4 values) or `api` (2
values), and Powertools' `service`: never an entity id. Values added in one invocation are summed (Count), kept at
their maximum (Percent), or kept each (Seconds: a latency distribution, up to Powertools' 100 values per blob).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from pos_ecom_sync.dates import instant_or_none
from pos_ecom_sync.models.messages import ChangeMessage, Concern, Via
from pos_ecom_sync.ratelimit import Observation, RateBudget, RatePolicy

if TYPE_CHECKING:  # the webhook function never polls
    from pos_ecom_sync.intake.poller import PollReport

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

# The concern whose worker repairs each reconciliation finding (reconcile/rules.py: catalog and variant findings are
# families for product_sync, stock findings variants for stock_sync, a missing order is imported).
DRIFT_CONCERN: dict[str, Concern] = {
    "catalog_outdated": "products",
    "catalog_missing": "products",
    "catalog_content": "products",
    "variant_gone": "products",
    "stock_differs": "stock",
    "stock_unsettled": "stock",
    "order_missing": "orders",
}
# Changes reported as they happened: their latency runs from the vendor's own stamp of the change. A reconciliation
# finding, an import or an operator's change may name an entity last edited days ago: from when it was queued.
LATENCY_FROM_VENDOR_STAMP: frozenset[Via] = frozenset({"webhook", "poll"})
_PAYLOAD_STAMPS = ("updated_at", "updatedAt")  # models/messages.py PAYLOAD_FIELDS: POS rows, eCom resources


@dataclass
class _Series:
    unit: MetricUnit
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        if self.unit == MetricUnit.Count and self.values:
            self.values[0] += value
        elif self.unit == MetricUnit.Percent and self.values:
            self.values[0] = max(self.values[0], value)
        else:
            self.values.append(value)


# One tally per thread: a Lambda sandbox runs one invocation at a time; the local stack runs every function in one
# process, one thread each.
_local = threading.local()
DimensionSet = tuple[tuple[str, str], ...]


def _tally() -> dict[DimensionSet, dict[str, _Series]]:
    tally: dict[DimensionSet, dict[str, _Series]] | None = getattr(_local, "tally", None)
    if tally is None:
        tally = _local.tally = {}
    return tally


def add_connection_metric(
    connection_id: str,
    *,
    name: str,
    unit: MetricUnit,
    value: float,
    dimensions: Mapping[str, str] | None = None,
) -> None:
    """Count `value` for `connection_id` (and `dimensions`), emitted at this invocation's end. Never raises."""
    key: DimensionSet = (("connection", connection_id), *sorted((dimensions or {}).items()))
    series = _tally().setdefault(key, {})
    series.setdefault(name, _Series(unit)).add(float(value))


def flush_connection_metrics() -> None:
    """Emit this invocation's connection metrics, one EMF blob per dimension set, and forget them. A metric that
    cannot be emitted is logged, never raised: the records it counts are already done."""
    tally = dict(_tally())
    _tally().clear()
    if not tally or is_metrics_disabled():
        return
    for dimensions, series in tally.items():
        try:
            metrics = EphemeralMetrics()
            for dim_name, dim_value in dimensions:
                metrics.add_dimension(name=dim_name, value=dim_value)
            for name, one in series.items():
                for value in one.values:
                    metrics.add_metric(name=name, unit=one.unit, value=value)
            with warnings.catch_warnings():  # a set whose only metrics were flushed at 100 values warns "empty"
                warnings.simplefilter("ignore")
                metrics.flush_metrics()
        except Exception as exc:
            logger.warning("connection metrics not emitted", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})


def flushes_connection_metrics(handler: Callable[P, R]) -> Callable[P, R]:
    """A handler's decorator: its connection metrics are emitted when it returns or raises."""

    @functools.wraps(handler)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            flush_connection_metrics()

    return run


# -- tracing -------------------------------------------------------------------------------------------------------


def tracing_enabled() -> bool:
    """Whether a Powertools Tracer records, by Powertools' own rule (`Tracer._is_tracer_disabled`): in Lambda (the
    template's `Tracing: Active`), unless POWERTOOLS_TRACE_DISABLED is true or SAM local or Chalice runs it."""
    if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
        return False
    emulated = os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV)
    return bool(os.getenv(constants.LAMBDA_TASK_ROOT_ENV)) and not emulated


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class _Untraced(BaseProvider):
    """The provider of a Tracer that records nothing: what Powertools' X-Ray provider does with tracing off."""

    @contextlib.contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoSegment()

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


# The libraries our calls go through: AWS (botocore) and the vendors (httpx). Powertools' default patches every
# library X-Ray knows, importing the ones installed (sqlite3, from the standard library) at each traced cold start.
TRACED_LIBRARIES = ("botocore", "httpx")


def tracer() -> Tracer:
    """A function's Powertools Tracer. With tracing on, Powertools' X-Ray tracer (libraries patched, handler and
    methods in subsegments). Off (outside Lambda, the local stack, POWERTOOLS_TRACE_DISABLED): the same decorators on
    a provider that records nothing, so `aws_xray_sdk.core` (about 150 ms of a cold start) is never imported."""
    return Tracer(patch_modules=TRACED_LIBRARIES) if tracing_enabled() else Tracer(provider=_Untraced())


# -- what the dashboard counts ------------------------------------------------------------------------------------


def count_changes_received(connection_id: str, concern: Concern, count: int) -> None:
    """Changes queued for `concern` by a webhook, the poller or reconciliation (changes in)."""
    if count > 0:
        add_connection_metric(
            connection_id, name="ChangesReceived", unit=MetricUnit.Count, value=count, dimensions={"concern": concern}
        )


def _parse_stamp(value: object) -> datetime | None:
    """A vendor stamp with a time of day (a bare date is too coarse for a latency); naive stamps are UTC."""
    if not isinstance(value, str) or len(value) < 16:
        return None
    return instant_or_none(value.replace("z", "Z"))  # RFC 3339 allows a lowercase "z"


def change_started_at(message: ChangeMessage) -> datetime:
    """When the change happened, as well as the message tells. A change a webhook or the poller reported: the vendor's
    own stamp of it (the message's `updated_at`, else the `updated_at`/`updatedAt` its payload carries, see
    `vendor_payload`). Otherwise, and for a change with no usable stamp (POS inventory rows carry none): when we
    received it (`received_at`)."""
    received = message.received_at if message.received_at.tzinfo else message.received_at.replace(tzinfo=UTC)
    if message.via in LATENCY_FROM_VENDOR_STAMP:
        for candidate in (message.updated_at, *(message.payload.get(name) for name in _PAYLOAD_STAMPS)):
            stamp = _parse_stamp(candidate)
            if stamp is not None:
                return stamp
    return received


def record_change_synced(message: ChangeMessage, now: float) -> None:
    """A worker completed a record (changes out): its latency from the change to the other side, and, for a
    reconciliation finding, one drift repaired (the worker re-read both sides and brought them in line)."""
    cid, concern = message.connection_id, message.concern
    latency = max(0.0, now - change_started_at(message).timestamp())  # a vendor clock ahead of ours: 0
    add_connection_metric(cid, name="ChangesSynced", unit=MetricUnit.Count, value=1, dimensions={"concern": concern})
    add_connection_metric(
        cid, name="SyncLatencySeconds", unit=MetricUnit.Seconds, value=latency, dimensions={"concern": concern}
    )
    if message.via == "reconcile":
        add_connection_metric(
            cid, name="DriftRepaired", unit=MetricUnit.Count, value=1, dimensions={"concern": concern}
        )


def record_poll(report: PollReport) -> None:
    """One connection's poll: the changes it queued per concern (changes in; an eCom order, also queued to statuses
    as a hint, counts once, as an order), and how far behind its most lagging feed is (`FeedReport.lag_s`)."""
    for feed in report.feeds:
        if feed.concern is not None:
            count_changes_received(report.connection_id, feed.concern, feed.queued)
    add_connection_metric(report.connection_id, name="PollLagSeconds", unit=MetricUnit.Seconds, value=report.lag_s)


# -- vendor rate budgets ------------------------------------------------------------------------------------------


def budget_used_percent(observation: Observation) -> float | None:
    """How full the vendor says its limit is, in percent: its leaky bucket's level when it reports one (R-Series
    `X-LS-Api-Bucket-Level`; its burst window is ours to pace, not a use of the budget), else its fullest window
    (`X-RateLimit-Limit`/`-Remaining`); None when the response told neither."""
    bucket = observation.bucket
    if bucket is not None and bucket.level is not None and bucket.size:
        return 100.0 * min(max(bucket.level, 0.0), bucket.size) / bucket.size
    used = [
        100.0 * min(max(reading.limit - reading.remaining, 0), reading.limit) / reading.limit
        for reading in observation.windows
        if reading.limit and reading.limit > 0 and reading.remaining is not None
    ]
    return max(used, default=None)


class MeteredBudget:
    """A connection's rate budget for one vendor API that also counts, for the dashboard, the responses
    (`VendorCalls`), the vendor's 429s (`VendorThrottled`) and the fullest window's use the vendor reported
    (`RateBudgetUsedPercent`), per connection and API. Budget behaviour is the wrapped budget's, unchanged."""

    def __init__(self, budget: RateBudget, connection_id: str) -> None:
        self.budget = budget
        self.connection_id = connection_id

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float:
        return self.budget.acquire(policy, max_wait_s=max_wait_s, cost=cost, slots=slots)

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        self.budget.observe(policy, observation)
        with contextlib.suppress(Exception):  # advisory, like `observe`: the call already happened
            self._count(policy.api, observation)

    def _count(self, api: str, observation: Observation) -> None:
        cid = self.connection_id
        add_connection_metric(cid, name="VendorCalls", unit=MetricUnit.Count, value=1, dimensions={"api": api})
        if observation.throttled:
            add_connection_metric(cid, name="VendorThrottled", unit=MetricUnit.Count, value=1, dimensions={"api": api})
        used = budget_used_percent(observation)
        if used is not None:
            add_connection_metric(
                cid, name="RateBudgetUsedPercent", unit=MetricUnit.Percent, value=used, dimensions={"api": api}
            )
