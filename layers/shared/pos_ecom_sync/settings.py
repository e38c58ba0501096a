"""Runtime settings, read from the Lambda environment once per cold start and validated.

Logic never reads `os.environ`; it receives a `RuntimeSettings` (tests build one directly).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pos_ecom_sync.errors import ConfigurationError

NonEmpty = Annotated[str, Field(min_length=1)]


class RuntimeSettings(BaseModel):
    """Environment every function gets from template.yaml Globals."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TABLE_NAME: NonEmpty
    SECRET_PREFIX: NonEmpty
    PRODUCTS_QUEUE_URL: NonEmpty
    STOCK_QUEUE_URL: NonEmpty
    ORDERS_QUEUE_URL: NonEmpty
    STATUSES_QUEUE_URL: NonEmpty
    POWERTOOLS_SERVICE_NAME: NonEmpty = "pos-ecom-sync"
    # httpx, botocore, urllib3...: WARNING unless an operator debugs them (their lines are redacted even then).
    THIRD_PARTY_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # Poller tuning; defaults suit a one-minute schedule.
    POLL_PAGE_SIZE: Annotated[int, Field(ge=1, le=1000)] = 200
    POLL_ECOM_OVERLAP_SECONDS: Annotated[int, Field(ge=0, le=3600)] = 120
    POLL_SAFETY_MARGIN_MS: Annotated[int, Field(ge=1000)] = 15_000
    # The product feed stops queueing while this many product changes wait (initial import backpressure). Kept
    # near what the catalog's eCom budget clears in a few windows, so a queued change is rarely throttled twice.
    POLL_MAX_PRODUCTS_BACKLOG: Annotated[int, Field(ge=10)] = 500
    # How long a webhook delivery id is remembered (X-Series retries for 48 h).
    WEBHOOK_DEDUP_TTL_SECONDS: Annotated[int, Field(ge=60)] = 48 * 3600
    SECRETS_MAX_AGE_SECONDS: Annotated[int, Field(ge=0)] = 300
    # Workers only: where records that can never succeed as sent are parked with their error.
    DEAD_LETTER_QUEUE_URL: str | None = None
    # Share of every eCom rate window the catalog worker leaves to stock and orders (they go first).
    CATALOG_RATE_RESERVE_SHARE: Annotated[float, Field(ge=0, lt=1)] = 0.3
    # How long a worker waits in-process for a rate slot before delaying the message instead.
    WORKER_MAX_RATE_WAIT_SECONDS: Annotated[float, Field(ge=0, le=300)] = 20.0
    # order_import only: the EventBridge bus new-fulfillment notifications go to ("default" is the account's bus).
    ORDER_EVENTS_BUS_NAME: str | None = None
    # reconcile only: a full compare starts this long after the last one completed (0: on every schedule tick
    # once the previous run is done); an unfinished run continues from its checkpoint on every tick.
    RECONCILE_INTERVAL_HOURS: Annotated[float, Field(ge=0)] = 24.0
    # eCom orders updated this far back are swept again for orders the ledger lacks.
    RECONCILE_ORDER_LOOKBACK_HOURS: Annotated[float, Field(gt=0, le=24 * 30)] = 48.0
    # An invocation stops reading when less than this is left (one page plus its publish fits well inside it).
    RECONCILE_SAFETY_MARGIN_MS: Annotated[int, Field(ge=1000)] = 30_000
    RECONCILE_POS_PAGE_SIZE: Annotated[int, Field(ge=1, le=1000)] = 200
    RECONCILE_ECOM_PAGE_SIZE: Annotated[int, Field(ge=1, le=250)] = 250

    def queue_url(self, concern: str) -> str:
        urls = {
            "products": self.PRODUCTS_QUEUE_URL,
            "stock": self.STOCK_QUEUE_URL,
            "orders": self.ORDERS_QUEUE_URL,
            "statuses": self.STATUSES_QUEUE_URL,
        }
        return urls[concern]


def load_settings(environ: dict[str, str] | None = None) -> RuntimeSettings:
    try:
        return RuntimeSettings.model_validate(dict(os.environ if environ is None else environ))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid function environment: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> RuntimeSettings:
    """The settings of this cold start (validated on first use, then cached)."""
    return load_settings()
