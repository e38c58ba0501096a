"""Trim botocore's data in a built layer to the AWS services the functions call: `python slim_botocore.py <site dir>`.

botocore ships the model of every AWS service (~450 directories, 29 MB). Before a cold start's first client exists it
walks all of them three times (which services have a `service-2`, an `endpoint-rule-set-1`, a `resources-1`) and
parses `endpoints.json` (1.2 MB: every service's endpoints in every partition): a first DynamoDB client and resource
and an SQS client take 73 ms with the full data, 31 ms with the trimmed one (least of 8 starts, 2-core dev host).

The layer keeps the directories of `SERVICES` and, in `endpoints.json`, their entries in every partition (the
partitions' own data, regions and defaults, untouched), so resolving one of them gives what the full data gives
(tests/unit/test_layer_build.py); any other service is unknown to this layer. Stdlib only: the layer Makefile runs
it with whatever Python `sam build` has.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

# Every AWS service the layer's code builds a client or resource for (tests/unit/test_layer_build.py reads the code).
SERVICES = frozenset({"dynamodb", "events", "secretsmanager", "sqs"})


def slim_endpoints(endpoints: dict[str, Any], services: frozenset[str] = SERVICES) -> dict[str, Any]:
    """`endpoints.json` with only `services`' entries in each partition (their endpoint prefixes are their names)."""
    partitions = [
        {**partition, "services": {name: v for name, v in partition["services"].items() if name in services}}
        for partition in endpoints["partitions"]
    ]
    return {**endpoints, "partitions": partitions}


def slim(site: Path, services: frozenset[str] = SERVICES) -> None:
    data = site / "botocore" / "data"
    missing = {name for name in services if not (data / name).is_dir()}
    if missing:
        raise SystemExit(f"botocore in {site} has no model for {sorted(missing)}")
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            shutil.rmtree(entry)
    endpoints = data / "endpoints.json"
    trimmed = slim_endpoints(json.loads(endpoints.read_text()), services)
    endpoints.write_text(json.dumps(trimmed, separators=(",", ":")))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.splitlines()[0])
    slim(Path(sys.argv[1]))
