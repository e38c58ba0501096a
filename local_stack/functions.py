"""Loads each function's `app.py` the way Lambda does and invokes it, one invocation at a time per function."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from local_stack.lambda_events import LambdaContext
from local_stack.provision import FunctionSpec

_invoking = threading.local()


def current_function() -> str | None:
    """The logical id of the function this thread is running an invocation of (None outside any invocation)."""
    return getattr(_invoking, "logical_id", None)


class LocalFunction:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        # Powertools' resolver and metrics keep per-invocation state in module globals, and Lambda
        # runs one event per sandbox at a time, so a function is never entered twice concurrently.
        self._lock = threading.Lock()
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None

    def _load(self) -> Callable[[dict[str, Any], Any], Any]:
        module_name, attr = self.spec.handler.rsplit(".", 1)
        path = self.spec.code_dir / f"{module_name.replace('.', '/')}.py"
        loader_spec = importlib.util.spec_from_file_location(f"lambda_{self.spec.logical_id}", path)
        if loader_spec is None or loader_spec.loader is None:
            raise RuntimeError(f"cannot load {path}")
        module: ModuleType = importlib.util.module_from_spec(loader_spec)
        sys.modules[loader_spec.name] = module
        loader_spec.loader.exec_module(module)
        handler: Callable[[dict[str, Any], Any], Any] = getattr(module, attr)
        return handler

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        with self._lock:
            if self._handler is None:
                self._handler = self._load()
            context = LambdaContext(function_name=self.spec.logical_id, timeout_s=self.spec.timeout)
            if request_id:
                context.aws_request_id = request_id
            _invoking.logical_id = self.spec.logical_id
            try:
                result = self._handler(event, context)
            finally:
                _invoking.logical_id = None
        # A real invocation crosses a JSON boundary; keep that so nothing relies on Python objects.
        return json.loads(json.dumps(result, default=str))
