"""Benchmark: reconciliation. Run: `.venv/bin/python -m tests.perf.bench_reconcile [--variants 5000] [--drifts 50]`
(prints figures; asserts nothing).

A synced shop is seeded in the simulators (X-Series: families of 4 variants; eCom: one product per family, its
variants at the stock total we last wrote) with the sync state written straight into the moto table from
template.yaml (families, variant links both ways, stock states, and eCom's answers to our last writes: the content
baseline), as the catalog and stock workers leave them. Then N drifts are injected, spread over the kinds: POS price
edits with no webhook (catalog_outdated), hand edits in eCom of a product title or a variant price, alternately
(catalog_content), eCom stock edits by hand (stock_differs), eCom variants deleted (variant_gone), and eCom orders
nobody imported (order_missing, on variants whose stock tracking is off, so the order makes no stock drift of its
own). The real handler (functions/reconcile/app.py) then runs tick after tick until the run completes, through the
runtime's rate-budgeted clients, and the figures are printed: vendor calls (list pages only: no per-product read),
drift found vs injected per kind, the share of eCom's daily call budget one full run uses, wall time, peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.perf.offline import provision_bench_stack, use_offline_aws

use_offline_aws()

from moto import mock_aws

VARIANTS_PER_FAMILY = 4
STOCK = 6
KINDS = ("catalog_outdated", "catalog_content", "stock_differs", "variant_gone", "order_missing")
# eCom's API budget a day (vendor-apis.md §2 rate limits as the issue states them): one full run should use <= 5%.
ECOM_DAILY_BUDGET = 12_000


def _seed_state(
    table: Any,
    connection_id: str,
    pos_rows: list[dict[str, Any]],
    ecom_variants: list[dict[str, Any]],
    ecom_products: list[dict[str, Any]],
) -> None:
    """The state a completed catalog import and stock sync leave: POS families paired in order with eCom products."""
    from pos_ecom_sync.catalog.shown import product_shown, variant_shown
    from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef
    from pos_ecom_sync.models.stock import VariantStockState
    from pos_ecom_sync.state import keys

    families: dict[str, list[dict[str, Any]]] = {}
    for row in pos_rows:
        families.setdefault(str(row.get("variant_parent_id") or row["id"]), []).append(row)
    by_product: dict[int, list[dict[str, Any]]] = {}
    for variant in ecom_variants:
        by_product.setdefault(int(variant["product"]["resource"]["id"]), []).append(variant)
    products = {int(p["id"]): p for p in ecom_products}
    pk = keys.connection_pk(connection_id)
    with table.batch_writer() as batch:
        for (family_key, rows), (product_id, variants) in zip(
            families.items(), sorted(by_product.items()), strict=True
        ):
            pos_variants = sorted((r for r in rows if r.get("variant_parent_id")), key=lambda r: r["id"])
            refs, shown = {}, {}
            for pos_row, ecom_row in zip(pos_variants, sorted(variants, key=lambda v: v["id"]), strict=True):
                ecom_id = int(ecom_row["id"])
                refs[pos_row["id"]] = EcomVariantRef(ecom_product_id=product_id, ecom_variant_id=ecom_id)
                shown[pos_row["id"]] = variant_shown(ecom_row)
                link = {"pos_product_id": pos_row["id"], "family_key": family_key}
                link |= {"ecom_product_id": product_id, "ecom_variant_id": ecom_id}
                batch.put_item(Item={"pk": pk, "sk": keys.pos_variant_link_sk(pos_row["id"]), **link})
                batch.put_item(Item={"pk": pk, "sk": keys.ecom_variant_link_sk(ecom_id), **link})
                stock = VariantStockState(
                    product_id=pos_row["id"], ecom_variant_id=ecom_id, last_written=STOCK, revision=1
                )
                batch.put_item(
                    Item={"pk": pk, "sk": keys.stock_sk(pos_row["id"]), "state": stock.model_dump_json(), "revision": 1}
                )
            state = CatalogState(
                ecom_product_id=product_id,
                applied_version=max(int(r["version"]) for r in rows),
                variants=refs,
                product_shown=product_shown(products[product_id]),
                variants_shown=shown,
            )
            batch.put_item(
                Item={"pk": pk, "sk": keys.family_sk(family_key), "state": state.model_dump_json(), "revision": 1}
            )


def _inject(pos: Any, ecom: Any, ecom_client: Any, drifts: int, links: dict[str, int]) -> Counter[str]:
    """Spread `drifts` over the kinds, each on its own family; returns what was injected per kind."""
    share = {kind: drifts // len(KINDS) + (1 if i < drifts % len(KINDS) else 0) for i, kind in enumerate(KINDS)}
    by_family: dict[str, list[dict[str, Any]]] = {}
    for row in pos.products():
        if row.get("variant_parent_id"):
            by_family.setdefault(row["variant_parent_id"], []).append(row)
    families = iter(sorted(by_family.items()))
    injected: Counter[str] = Counter()
    for kind in KINDS:
        for _ in range(share[kind]):
            _, rows = next(families)
            variant = rows[0]
            ecom_id = links[variant["id"]]
            if kind == "catalog_outdated":
                pos.update_product(variant["id"], price_including_tax=77.0, price_excluding_tax=66.96)
            elif kind == "catalog_content" and injected[kind] % 2:
                ecom.edit_variant(ecom_id, priceIncl=1.0)  # a hand edit: no product webhook is subscribed
            elif kind == "catalog_content":
                product_id = int(ecom.tables["variants"][ecom_id]["product"])
                ecom_client.update_product(product_id, {"title": "Edited by hand"})
            elif kind == "stock_differs":
                ecom.set_stock_manually(ecom_id, STOCK + 40)
            elif kind == "variant_gone":
                ecom_client.delete_variant(ecom_id)
            else:
                ecom.edit_variant(ecom_id, stockTracking="disabled")  # the order then leaves its stock alone
                ecom.place_order([{"variant_id": ecom_id, "quantity": 1}], email="bench@example.com")
            injected[kind] += 1
    return injected


def run(variants: int, drifts: int) -> dict[str, Any]:
    with mock_aws():
        from pos_ecom_sync.connectors.ecom import EcomClient
        from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
        from pos_ecom_sync.ratelimit import InMemoryRateBudget
        from pos_ecom_sync.secrets import write_connection_secrets
        from pos_ecom_sync.state.store import SyncStore

        from local_stack.demo import DEMO_SECRETS
        from local_stack.lambda_events import LambdaContext
        from local_stack.simulators.ecom import EcomSimulator
        from local_stack.simulators.xseries import XSeriesSimulator
        from tests.support import drain_queue

        session, _resources, env = provision_bench_stack(RECONCILE_INTERVAL_HOURS="0")

        families = variants // VARIANTS_PER_FAMILY
        pos = XSeriesSimulator(token=DEMO_SECRETS["pos_access_token"], seed=7, outlets=1, rate_limit=0)
        ecom = EcomSimulator(
            api_key=DEMO_SECRETS["ecom_api_key"],
            api_secret=DEMO_SECRETS["ecom_api_secret"],
            webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
            seed=7,
            limits=None,
        )
        pos_url, ecom_url = pos.start(), ecom.start()
        seeding = time.perf_counter()
        pos.seed_catalog(families, VARIANTS_PER_FAMILY, seed=7)
        ecom.seed_catalog(families, VARIANTS_PER_FAMILY, seed=7, stock=STOCK)
        table = session.resource("dynamodb").Table(env["TABLE_NAME"])
        _seed_state(table, "shop", pos.products(), ecom.variants(), ecom.products())
        store = SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb"))
        store.save_connection(
            Connection(
                connection_id="shop",
                pos_base_url=pos_url,
                ecom_base_url=ecom_url,
                connected_outlet_ids=[pos.outlets()[0]["id"]],
                created_at=datetime.now(UTC) - timedelta(days=10),
            ),
            create=True,
        )
        write_connection_secrets(
            session.client("secretsmanager"),
            env["SECRET_PREFIX"],
            "shop",
            ConnectionSecrets.model_validate(DEMO_SECRETS),
        )
        ecom_client = EcomClient(
            ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        links = _all_links(table)
        injected = _inject(pos, ecom, ecom_client, drifts, links)
        seeded_s = time.perf_counter() - seeding

        from functions.reconcile import app

        sqs = session.client("sqs")
        pos_before, ecom_before = pos.requests, ecom.requests
        ticks, found, queued = 0, Counter[str](), 0
        started = time.perf_counter()
        run_pages: Counter[str] = Counter()
        while True:
            ticks += 1
            summary = app.lambda_handler({"connection_id": "shop"}, LambdaContext("ReconcileFunction", 300))
            report = summary["connections"]["shop"]
            run_pages.update(report["pages"])
            found.update({k: v for k, v in summary["drift"].items() if v})
            queued += summary["queued"]
            for concern in ("products", "stock", "orders"):  # the workers' part is not measured here
                drain_queue(sqs, env[f"{concern.upper()}_QUEUE_URL"])
            if report["completed"] or ticks > 50:
                break
        wall_s = time.perf_counter() - started
        result = {
            "variants": len(links),
            "pos_rows": len(pos.products()),
            "seed_s": seeded_s,
            "ticks": ticks,
            "pos_calls": pos.requests - pos_before,
            "ecom_calls": ecom.requests - ecom_before,
            "pages": dict(run_pages),
            "queued": queued,
            "injected": dict(injected),
            "found": dict(found),
            "wall_s": wall_s,
        }
        pos.stop()
        ecom.stop()
    return result


def _all_links(table: Any) -> dict[str, int]:
    """POS variant id -> eCom variant id, from the seeded link items."""
    links: dict[str, int] = {}
    scan: dict[str, Any] = {}
    while True:
        page = table.scan(**scan)
        for item in page["Items"]:
            if str(item["sk"]).startswith("LINK#pos#"):
                links[str(item["pos_product_id"])] = int(item["ecom_variant_id"])
        if "LastEvaluatedKey" not in page:
            return links
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_reconcile", description=__doc__)
    parser.add_argument("--variants", type=int, default=5000)
    parser.add_argument("--drifts", type=int, default=50)
    args = parser.parse_args(argv)
    figures = run(args.variants, args.drifts)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"reconcile: {figures['variants']:,} variants ({figures['pos_rows']:,} POS product rows), synced state seeded"
    )
    print(f"  seeding (simulators + moto state + drift injection): {figures['seed_s']:.1f} s (not part of the run)")
    print(f"  run: {figures['ticks']} tick(s), pages {figures['pages']}")
    print(f"  POS calls: {figures['pos_calls']}, eCom calls: {figures['ecom_calls']} (list pages only)")
    share = figures["ecom_calls"] / ECOM_DAILY_BUDGET
    print(f"  eCom daily budget one full run uses: {share:.1%} of {ECOM_DAILY_BUDGET:,} (goal <= 5%)")
    for kind in KINDS:
        injected, found = figures["injected"].get(kind, 0), figures["found"].get(kind, 0)
        print(f"  drift {kind:<17} injected {injected:>4}  found {found:>4}")
    others = {k: v for k, v in figures["found"].items() if k not in KINDS}
    print(f"  other drift found: {others or 'none'}; messages queued: {figures['queued']}")
    print(f"  wall time: {figures['wall_s']:.1f} s (moto in-process, simulators on 127.0.0.1)")
    print(f"  peak memory: {peak_mib:,.0f} MiB RSS (ru_maxrss of the whole process: moto and both simulators included)")


if __name__ == "__main__":
    sys.exit(main())
