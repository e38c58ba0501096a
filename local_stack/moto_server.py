"""moto in server mode, with DynamoDB requests handled one at a time (local_stack/dynamodb_atomic.py) and SQS sends
checked against SQS's real limits (local_stack/sqs_limits.py), neither of which moto does by itself, and SQS and
DynamoDB's hot paths made cheaper (local_stack/moto_speed.py).
"""

from __future__ import annotations

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_stack.dynamodb_atomic import serialize_dynamodb
from local_stack.moto_speed import speed_up_moto
from local_stack.sqs_limits import enforce_sqs_limits


class LocalMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        enforce_sqs_limits()
        serialize_dynamodb()
        speed_up_moto()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
