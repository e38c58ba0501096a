"""One id to follow a change end to end: born at the webhook (API Gateway's request id) or the poll/reconcile run
(its Lambda request id), carried by every queued message and EventBridge event it leads to, and set on every log
line of every worker that handles it.

The id of the invocation (or record) being handled lives in a context variable, so a message made anywhere
during that work (a status hint, a stock recomputation chunk, a drift finding) inherits it without threading a
parameter through every function; each Lambda invocation (each thread in the local stack) has its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aws_lambda_powertools import Logger

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _current.get()


@contextmanager
def correlated(correlation_id: str | None, logger: Logger | None = None) -> Iterator[str | None]:
    """Within this block, new messages and events carry `correlation_id`, and so do `logger`'s lines. The log key
    is thread-local: a Lambda sandbox runs one invocation at a time, but the local stack runs every function in
    one process, where the shared correlation key would be overwritten by whichever invocation set it last."""
    token = _current.set(correlation_id)
    if logger is not None:
        logger.thread_safe_append_keys(correlation_id=correlation_id)
    try:
        yield correlation_id
    finally:
        _current.reset(token)
        if logger is not None:
            logger.thread_safe_remove_keys(["correlation_id"])
