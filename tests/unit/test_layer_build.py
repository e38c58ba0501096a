"""The layer keeps botocore's data for the AWS services the functions call only (layers/shared/slim_botocore.py): every
service the code builds a client for is kept, and a kept service resolves and builds as with botocore's full data."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import botocore
import botocore.exceptions
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader, create_loader
from botocore.regions import EndpointResolver

REPO = Path(__file__).resolve().parents[2]
CODE = [REPO / "layers" / "shared" / "pos_ecom_sync", REPO / "functions"]


def _slim_botocore() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slim_botocore", REPO / "layers" / "shared" / "slim_botocore.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slim_botocore = _slim_botocore()


def _services_called() -> set[str]:
    """The services named by `aws_client("x", ...)`, `boto3.client("x")` and `boto3.resource("x")` in the code."""
    found: set[str] = set()
    for root in CODE:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                first = node.args[0]
                if name in {"aws_client", "client", "resource"} and isinstance(first, ast.Constant):
                    found.add(str(first.value))
    return found


def test_the_layer_keeps_exactly_the_aws_services_the_code_calls() -> None:
    assert _services_called() == slim_botocore.SERVICES


def _variants(resolver: EndpointResolver, partition: dict[str, object]) -> list[tuple[str, str, bool, bool]]:
    regions = sorted(partition["regions"])  # type: ignore[call-overload]
    return [
        (service, region, fips, dualstack)
        for service in sorted(slim_botocore.SERVICES)
        for region in [*regions, *resolver.get_available_endpoints(service, str(partition["partition"]))]
        for fips in (False, True)
        for dualstack in (False, True)
    ]


def _resolve(resolver: EndpointResolver, service: str, region: str, fips: bool, dualstack: bool) -> object:
    """The endpoint, or the error the resolver raises (some partitions model no FIPS or dual-stack variant)."""
    try:
        return resolver.construct_endpoint(service, region, use_fips_endpoint=fips, use_dualstack_endpoint=dualstack)
    except botocore.exceptions.BotoCoreError as exc:
        return f"{type(exc).__name__}: {exc}"


def test_a_kept_service_resolves_in_every_partition_and_region_as_with_the_full_endpoints() -> None:
    full_data = create_loader().load_data("endpoints")
    full, slim = EndpointResolver(full_data), EndpointResolver(slim_botocore.slim_endpoints(full_data))
    assert slim.get_available_partitions() == full.get_available_partitions()
    checked = 0
    for partition in full_data["partitions"]:
        name = partition["partition"]
        for service in slim_botocore.SERVICES:
            assert slim.get_available_endpoints(service, name) == full.get_available_endpoints(service, name)
        for service, region, fips, dualstack in _variants(full, partition):
            assert slim.get_partition_for_region(region) == full.get_partition_for_region(region)
            expected = _resolve(full, service, region, fips, dualstack)
            assert _resolve(slim, service, region, fips, dualstack) == expected, (service, region, fips, dualstack)
            checked += 1
    assert checked > 1000


@pytest.fixture(scope="module")
def slim_session(tmp_path_factory: pytest.TempPathFactory) -> botocore.session.Session:
    """A botocore session that sees only a slimmed copy of botocore's own data."""
    site = tmp_path_factory.mktemp("layer")
    shutil.copytree(Path(botocore.__file__).parent / "data", site / "botocore" / "data")
    slim_botocore.slim(site)
    session = botocore.session.get_session()
    session.register_component(
        "data_loader", Loader(extra_search_paths=[str(site / "botocore" / "data")], include_default_search_paths=False)
    )
    return session


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_a_slimmed_layer_builds_each_kept_client_as_the_full_one(
    slim_session: botocore.session.Session, region: str
) -> None:
    full_session = botocore.session.get_session()
    for service in sorted(slim_botocore.SERVICES):
        ours = slim_session.create_client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        full = full_session.create_client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        assert (ours.meta.endpoint_url, ours.meta.partition) == (full.meta.endpoint_url, full.meta.partition)
        assert ours.meta.service_model.operation_names == full.meta.service_model.operation_names
    with pytest.raises(UnknownServiceError):  # the layer knows no other service
        slim_session.create_client("s3", region_name=region)
