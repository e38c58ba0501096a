"""moto in server mode, with DynamoDB requests handled one at a time.

moto's DynamoDB backend is not thread-safe: TransactWriteItems deep-copies a table while another request
thread writes to it ("dictionary changed size during iteration"). Real DynamoDB serialises conflicting
writes itself, so serialising DynamoDB here changes no behaviour the code relies on. Other services stay
concurrent (an SQS long poll must not block every other call).

SQS sends are checked against SQS's real limits (local_stack/sqs_limits.py), which moto does not enforce.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_stack.sqs_limits import enforce_sqs_limits


class _DynamoDbOneAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


class LocalMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        enforce_sqs_limits()
        app = _DynamoDbOneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
