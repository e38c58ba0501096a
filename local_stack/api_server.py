"""Serves the template's HttpApi routes on 127.0.0.1, turning requests into API Gateway v2 events."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_stack.functions import LocalFunction
from local_stack.lambda_events import api_gateway_v2_event
from local_stack.provision import HttpRoute
from local_stack.simulators.common import SERVER_POLL_S

# API Gateway HTTP APIs accept at most 10 MB; a larger body never reaches the function.
MAX_PAYLOAD = 10 * 1024 * 1024
# An HTTP API answers a request no route matches, whatever its method (DELETE, PATCH, OPTIONS without CORS, HEAD,
# an invented one), with a JSON 404 `{"message":"Not Found"}`: routes are method + path, and the API has no
# `$default` or `ANY` route (docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html).
NOT_FOUND = b'{"message":"Not Found"}'


class LocalApi:
    def __init__(
        self,
        routes: list[HttpRoute],
        functions: dict[str, LocalFunction],
        port: int,
        on_request: Callable[[str, int, dict[str, Any]], None] | None = None,
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.on_request = on_request
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the stack narrates instead
                return

            def __getattr__(self, name: str) -> Any:
                # http.server answers a method without a `do_<METHOD>` with a 501 HTML page; every method is routed.
                if name.startswith("do_"):
                    return lambda: api.handle(self)
                raise AttributeError(name)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(SERVER_POLL_S,), name="local-api", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            request.close_connection = True
            self._reply(request, 400, {"Content-Type": "application/json"}, b'{"message":"Bad Request"}')
            return
        if length > MAX_PAYLOAD:
            self._reply(request, 413, {"Content-Type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            params = route.match(request.command, split.path)
            if params is None:
                continue
            event = api_gateway_v2_event(
                request.command,
                split.path,
                route.route_key,
                params,
                body,
                headers=dict(request.headers.items()),
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
            )
            try:
                result = self.functions[route.function].invoke(event)
            except Exception as exc:  # an unhandled error is what API Gateway turns into a 500
                self._reply(request, 500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')
                if self.on_request:
                    self.on_request(route.route_key, 500, {"error": repr(exc)})
                return
            status = int(result.get("statusCode", 200))
            payload = result.get("body") or ""
            raw = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
            self._reply(request, status, result.get("headers") or {}, raw)
            if self.on_request:
                try:
                    detail = json.loads(raw) if raw else {}
                except ValueError:
                    detail = {}
                self.on_request(route.route_key, status, detail if isinstance(detail, dict) else {})
            return
        self._reply(request, 404, {"Content-Type": "application/json"}, NOT_FOUND)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":  # a HEAD answer has the headers of the full answer and no body
            request.wfile.write(body)
