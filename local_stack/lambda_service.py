"""The Lambda Invoke API for the local stack's functions, so `pos-ecom-sync poll now` and `reconcile now` take the
same path locally as against AWS: boto3's `lambda.invoke` (moto's Lambda would need Docker to run the code).

Only `Invoke` is served (POST /2015-03-31/functions/{FunctionName}/invocations), with its documented answers
(docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): 200 and the function's JSON result for RequestResponse,
`X-Amz-Function-Error: Unhandled` with `{errorMessage, errorType}` when the handler raised, 202 for Event (run in
the background), 204 for DryRun, and 404 `ResourceNotFoundException` for a function the stack does not have.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from local_stack.functions import LocalFunction
from local_stack.simulators.common import SERVER_POLL_S

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"


class LocalLambdaService:
    def __init__(self, functions: dict[str, LocalFunction], port: int, region: str, account_id: str) -> None:
        self.by_name = {function.spec.name or logical: function for logical, function in functions.items()}
        self.region = region
        self.account_id = account_id
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                service.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(SERVER_POLL_S,), name="local-lambda", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _function(self, name_or_arn: str) -> LocalFunction | None:
        # FunctionName may be the name, the full ARN or the partial ARN `account:function:name`.
        name = name_or_arn.rsplit(":function:", 1)[-1].split(":", 1)[0]
        return self.by_name.get(name)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if not (path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX)):
            self._error(request, 404, "UnknownOperationException", "Unknown operation")
            return
        name = unquote(path[len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)])
        function = self._function(name)
        if function is None:
            arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
            self._error(request, 404, "ResourceNotFoundException", f"Function not found: {arn}")
            return
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            self._error(request, 400, "InvalidRequestContentException", "Could not parse request body into json")
            return
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            self._reply(request, 204, {}, b"")
            return
        request_id = str(uuid.uuid4())  # the invocation's id: the handler's `context.aws_request_id`, as in Lambda
        if invocation_type == "Event":
            threading.Thread(target=self._run, args=(function, event, request_id), daemon=True).start()
            self._reply(request, 202, {"x-amzn-RequestId": request_id}, b"")
            return
        payload, failed = self._run(function, event, request_id)
        headers = {
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": "$LATEST",
            **({"X-Amz-Function-Error": "Unhandled"} if failed else {}),
        }
        self._reply(request, 200, headers, payload)

    @staticmethod
    def _run(function: LocalFunction, event: Any, request_id: str) -> tuple[bytes, bool]:
        try:
            return json.dumps(function.invoke(event, request_id)).encode(), False
        except Exception as exc:  # what Lambda reports as an unhandled function error
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return json.dumps(error).encode(), True

    def _error(self, request: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._reply(request, status, {"x-amzn-ErrorType": code}, body)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
