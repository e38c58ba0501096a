"""The webhook API's OpenAPI document, generated from the Event Handler that serves it, never written by hand.

    python -m local_stack.openapi           # `make openapi`: rewrite contracts/webhook-api.openapi.json
    python -m local_stack.openapi --check   # exit 1 when the checked-in document is stale

It imports the real function (functions/webhook_ingest/app.py): paths, summaries, bodies, answers and security
schemes all come from its route decorators and `configure_openapi`, so the document cannot drift from the code.
tests/unit/test_webhook_openapi.py fails when the file is stale or its routes differ from the template's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "contracts" / "webhook-api.openapi.json"
_REF_PREFIX = "#/components/schemas/"


def project_version() -> str:
    """The API's version is the project's (pyproject.toml); Lambda has no package metadata to read it from."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(project["version"])


def webhook_api_document() -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # importing the handler must not patch boto for X-Ray
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from functions.webhook_ingest.app import app

    return _without_unused_schemas(json.loads(app.get_openapi_json_schema(version=project_version())))


def render(document: dict[str, Any]) -> str:
    """The file's exact text (the contracts' JSON style: 2-space indent, UTF-8 as is, trailing newline)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _without_unused_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools always adds its validation-error schemas (`HTTPValidationError`, ...), referenced by no route here:
    the function does not enable validation, so it never answers with them. Keep only schemas something refers to."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    used = {ref.removeprefix(_REF_PREFIX) for ref in _refs({k: v for k, v in document.items() if k != "components"})}
    pending = list(used)
    while pending:  # schemas a used schema refers to are used too
        for ref in _refs(schemas.get(pending.pop(), {})):
            name = ref.removeprefix(_REF_PREFIX)
            if name not in used:
                used.add(name)
                pending.append(name)
    for name in set(schemas) - used:
        del schemas[name]
    if "schemas" in document.get("components", {}) and not schemas:
        del document["components"]["schemas"]
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in document is stale")
    args = parser.parse_args(argv)
    text = render(webhook_api_document())
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.is_file() else ""
        if current != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
