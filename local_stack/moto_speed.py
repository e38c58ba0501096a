"""moto, doing what it did for a fraction of the CPU: the tests' and the local stack's AWS is moto, and two of its
hot paths made the large tests CPU-bound in moto rather than in our code.

SQS reads the same clock more cheaply.
moto decides whether each queued message is visible or delayed by reading the time through datetime arithmetic
(`moto.core.utils.unix_time`: now(UTC), naive, minus the epoch), once per message. It does so for every queue count,
and it builds all the counts on every send (it reads `ContentBasedDeduplication` from the whole attribute map,
counts included), so sending n messages to a queue costs n^2 clock reads. One test that polls 1,750 POS rows into
1,000 messages spent 17 million clock reads and most of its 2 minutes there.
- `time.time()` is the same instant (seconds since the epoch); only the call with no argument is replaced, so moto's
  conversions of a given datetime are untouched.
- A count or listing of a queue's messages reads the clock once for the whole scan (one instant instead of a
  slightly later one per message: what a real count means anyway).
- moto's camelCase -> snake_case conversion of attribute names, done for every attribute of every count, is a pure
  function and is cached.
No behaviour changes: visibility, delays and retention read the same clock as before.

DynamoDB casts values more cheaply. Every moto Query sorts the whole table (`Table.all_items`) and compares key
values through `DynamoType.cast_value`, which tries five type tests before it returns a string as itself: a query
on a table of a few thousand items cost millions of them. The fast path returns the same value (a string, binary or
boolean as is, a number as a Decimal) and leaves every other type to moto.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.sqs import models as sqs_models

_PATCHED = "_sped_up"
# moto names these functions in the module without exporting them: patched where its SQS models look them up.
models: Any = sqs_models


def speed_up_moto() -> None:
    """Patch moto's SQS clock reads and DynamoDB value casts (idempotent)."""
    if getattr(models, _PATCHED, False):
        return
    _cheap_sqs_clock()
    _cheap_dynamodb_casts()
    setattr(models, _PATCHED, True)


def _cheap_sqs_clock() -> None:
    unix_time, unix_time_millis = models.unix_time, models.unix_time_millis

    def now_seconds(dt: datetime.datetime | None = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    def now_millis(dt: datetime.datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else unix_time_millis(dt)

    models.unix_time = now_seconds
    models.unix_time_millis = now_millis
    queue = models.Queue
    # The same tests as `Message.visible` / `Message.delayed`, at one instant for the whole scan.
    queue.messages = property(lambda self: _scan(self, lambda m, now: now > m.visible_at and not now < m.delayed_until))
    queue.approximate_number_of_messages_delayed = property(
        lambda self: len(_scan(self, lambda m, now: now < m.delayed_until))
    )
    queue.approximate_number_of_messages_not_visible = property(
        lambda self: len(_scan(self, lambda m, now: not now > m.visible_at))
    )
    models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(models.camelcase_to_underscores)


_AS_IS = frozenset({"S", "B", "BOOL"})


def _cheap_dynamodb_casts() -> None:
    slow_cast = DynamoType.__dict__["cast_value"].fget
    assert slow_cast is not None

    def cast_value(self: DynamoType) -> Any:
        kind = self.type
        if kind in _AS_IS:
            return self.value
        if kind == "N":
            return Decimal(self.value)
        return slow_cast(self)

    DynamoType.cast_value = property(cast_value)  # type: ignore[assignment,method-assign]


def _scan(queue: Any, keep: Callable[[Any, float], bool]) -> list[Any]:
    now = time.time() * 1000.0
    return [m for m in queue._messages if keep(m, now)]
