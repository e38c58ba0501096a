"""Logs carry no personal data or secrets, at any level.

- Third-party loggers (httpx's request lines carry URLs with query strings, e.g. the POS customer search by email;
  botocore's DEBUG lines carry request and response bodies, e.g. a secret's value) are held at WARNING unless an
  operator switches them on (`THIRD_PARTY_LOG_LEVEL`, see settings).
- Even then, and for our own lines, every message is redacted before any handler sees it: URL query strings,
  bytes and body dumps, e-mail addresses, and credential-looking values after words like token, secret or key.
- Extra fields of the functions' Powertools logger are redacted the same way (an error text may echo a vendor body).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer")

_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# botocore DEBUG: "Response body:\nb'{...}'", "Making request ... with params: {...}" and headers dumps.
_BODY_DUMP = re.compile(r"(?is)((?:response body|request body|body|params|headers)\s*[:=]\s*).*")
_BYTES_LITERAL = re.compile(r"""b(['"]).*?(?<!\\)\1""", re.DOTALL)
_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|basic|token|secret|password|api[_-]?key|key|signature|authorization|x-signature)"
    r"(\"?\s*[:=]\s*\"?|\s+)([^\s\"',;&]{6,})"
)
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """`text` with query strings, body dumps, e-mail addresses and credential-looking values masked."""
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _BYTES_LITERAL.sub(REDACTED, text)
    text = _BODY_DUMP.sub(rf"\1{REDACTED}", text)
    text = _EMAIL.sub("<email>", text)
    return _CREDENTIAL.sub(rf"\1\2{REDACTED}", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


# Attributes every LogRecord has: anything else on a record came from `extra` (or Powertools' appended keys).
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactExtras(logging.Filter):
    """Redacts the `extra` fields of a record (the message itself is redacted when the record is made)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, _redact_value(value))
        return True


def _redacting_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format: keep the template, drop the arguments
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        return record

    factory.redacts = True  # type: ignore[attr-defined]  # marks the installed factory (installed once)
    return factory


def configure_logging(service_logger: logging.Logger | None, third_party_level: str = "WARNING") -> None:
    """Once per cold start: quiet third-party loggers, redact every record, redact the service logger's extras."""
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(third_party_level)
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts", False):
        logging.setLogRecordFactory(_redacting_factory(current))
    if service_logger is not None and not any(isinstance(f, RedactExtras) for f in service_logger.filters):
        service_logger.addFilter(RedactExtras())
