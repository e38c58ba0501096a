"""The project's vendor contracts (`contracts/<api>.json`) as code: match a request to its documented route, say what
in it the vendor does not declare, and check an answer's shape.

Both sides use it: the simulators, to behave as the vendor does (undeclared query parameters are ignored, a body
the vendor refuses is refused), and the contract tests, to hold the connectors' requests and the simulators' answers
to what the vendors publish. The contract files are written from the vendor specs, never from our code; see
`contracts/README.md` for the format and the sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"
APIS = ("xseries", "ecom", "rseries")
_PARAM = re.compile(r"\{[^/{}]+\}")


def normalize_template(template: str) -> str:
    """`/sales/{sale_id}` and `/sales/{id}` are the same route: path parameter names do not matter."""
    return _PARAM.sub("{}", template)


@dataclass(frozen=True)
class Violation:
    """One way a request or an answer departs from the contract."""

    kind: str  # undeclared-route, undeclared-param, bad-param, missing-param, bad-body, undeclared-status, bad-answer
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.method} {self.path}: {self.detail}"


def _query_type_ok(spec: Mapping[str, Any], value: str) -> bool:
    kind = spec.get("type", "string")
    if kind == "integer":
        return re.fullmatch(r"-?\d+", value) is not None
    if kind == "number":
        return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
    if kind == "boolean":
        return value in {"true", "false", "1", "0"}
    return True


@dataclass(frozen=True)
class ContractRoute:
    method: str
    path: str
    entry: Mapping[str, Any]
    pattern: re.Pattern[str] = field(compare=False)

    @property
    def specificity(self) -> int:
        """Literal characters in the template: `/products/count.json` beats `/products/{id}.json`."""
        return len(_PARAM.sub("", self.path))

    @property
    def documented(self) -> bool:
        return bool(self.entry.get("documented", True))

    def declared_query(self, query: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
        """The query parameters this route declares for this request (a search declares attributes per `type`)."""
        declared: dict[str, Mapping[str, Any]] = dict(self.entry.get("query") or {})
        by = self.entry.get("query_by")
        if isinstance(by, Mapping):
            chosen = query.get(str(by.get("param")))
            declared.update((by.get("values") or {}).get(chosen) or {})
        return declared

    @property
    def request_schema(self) -> Mapping[str, Any] | None:
        request = self.entry.get("request")
        return request.get("schema") if isinstance(request, Mapping) else None

    @property
    def request_content_type(self) -> str:
        request = self.entry.get("request")
        return str(request.get("content_type", "application/json")) if isinstance(request, Mapping) else ""

    def response(self, status: int) -> Mapping[str, Any] | None:
        responses = self.entry.get("responses") or {}
        found = responses.get(str(status))
        return found if isinstance(found, Mapping) else None


class Contract:
    """One vendor API's contract file."""

    def __init__(self, api: str, document: Mapping[str, Any]) -> None:
        self.api = api
        self.document = document
        self.routes: list[ContractRoute] = []
        self._validators: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}
        for entry in document.get("routes", []):
            template = str(entry["path"])
            regex = _PARAM.sub(lambda _: "[^/]+?", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
            self.routes.append(ContractRoute(str(entry["method"]).upper(), template, entry, re.compile(regex)))

    @classmethod
    def load(cls, api: str, directory: Path = CONTRACTS_DIR) -> Contract:
        return cls(api, json.loads((directory / f"{api}.json").read_text(encoding="utf-8")))

    @property
    def refusal_status(self) -> int:
        return int(self.document.get("refusal_status", 400))

    def route(self, method: str, path: str) -> ContractRoute | None:
        """The documented route a concrete request path belongs to (the most specific template wins)."""
        candidates = [r for r in self.routes if r.method == method.upper() and r.pattern.fullmatch(path)]
        return max(candidates, key=lambda r: r.specificity) if candidates else None

    def route_for_template(self, method: str, template: str) -> ContractRoute | None:
        wanted = normalize_template(template)
        for route in self.routes:
            if route.method == method.upper() and normalize_template(route.path) == wanted:
                return route
        return None

    def _validator(self, schema: Mapping[str, Any]) -> Draft202012Validator:
        """One compiled validator per schema object (the schemas live as long as the contract document); the
        entry keeps the schema itself, so its id cannot be reused by another object while cached."""
        cached = self._validators.get(id(schema))
        if cached is None or cached[0] is not schema:
            cached = (schema, Draft202012Validator({**schema, "$defs": self.document.get("$defs", {})}))
            self._validators[id(schema)] = cached
        return cached[1]

    def schema_errors(self, schema: Mapping[str, Any], value: Any) -> list[str]:
        errors = sorted(self._validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message}" for e in errors[:5]]

    # -- requests ----------------------------------------------------------------------------------------

    def split_query(self, route: ContractRoute, query: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """(what the vendor reads, what it silently ignores) of a request's query parameters."""
        declared = route.declared_query(query)
        kept = {name: value for name, value in query.items() if name in declared}
        return kept, sorted(set(query) - set(declared))

    def body_refusal(self, route: ContractRoute, body: Any) -> str | None:
        """Why the vendor refuses this body (missing required field, unknown enum value...), or None."""
        schema = route.request_schema
        if schema is None:
            return None
        errors = self.schema_errors(schema, body)
        return "; ".join(errors) if errors else None

    def check_request(self, method: str, path: str, query: Mapping[str, str], body: Any = None) -> list[Violation]:
        """Everything in a request the contract does not allow: what the real API would ignore or refuse."""
        method = method.upper()
        route = self.route(method, path)
        if route is None:
            return [Violation("undeclared-route", method, path, f"no {self.api} contract route")]
        # A route no source documents is in the contract only with its `unverified` note (what the code does to
        # survive the vendor refusing it): it is allowed here, and listed as such in contracts/README.md.
        found: list[Violation] = []
        declared = route.declared_query(query)
        for name, value in query.items():
            spec = declared.get(name)
            if spec is None:
                found.append(Violation("undeclared-param", method, path, f"query parameter {name!r} is not declared"))
            elif "enum" in spec and value not in [str(v) for v in spec["enum"]]:
                found.append(Violation("bad-param", method, path, f"{name}={value!r} is not one of {spec['enum']}"))
            elif not _query_type_ok(spec, value):
                found.append(Violation("bad-param", method, path, f"{name}={value!r} is not {spec.get('type')}"))
        for name, spec in declared.items():
            if spec.get("required") and name not in query:
                found.append(Violation("missing-param", method, path, f"required query parameter {name!r} missing"))
        refusal = self.body_refusal(route, body) if route.request_schema is not None else None
        if refusal:
            found.append(Violation("bad-body", method, path, refusal))
        return found

    # -- answers -----------------------------------------------------------------------------------------

    def check_answer(self, method: str, path: str, status: int, body: Any) -> list[Violation]:
        """An answer the vendor does not document: an undeclared status, or a body that breaks the shape."""
        method = method.upper()
        route = self.route(method, path)
        if route is None:
            return [Violation("undeclared-route", method, path, f"no {self.api} contract route")]
        if status == 429:
            schema = (self.document.get("rate_limit") or {}).get("throttled_body")
        elif status >= 400 and route.response(status) is None:
            schema = (self.document.get("error_body") or {}).get("schema")
            if status not in _GENERIC_ERRORS:
                return [Violation("undeclared-status", method, path, f"{status} is not a documented answer")]
        else:
            declared = route.response(status)
            if declared is None:
                statuses = sorted((route.entry.get("responses") or {}).keys())
                return [Violation("undeclared-status", method, path, f"{status} is not one of {statuses}")]
            schema = declared.get("schema")
        if schema is None or body is None:
            return []
        return [Violation("bad-answer", method, path, error) for error in self.schema_errors(schema, body)]


# Answers any route may give without listing them: bad request, auth, not found, refusal, throttling, server faults.
_GENERIC_ERRORS = frozenset({400, 401, 403, 404, 422, 429, 500, 502, 503})


@cache
def load(api: str) -> Contract:
    """The contract of `api`, read once per process."""
    return Contract.load(api)
