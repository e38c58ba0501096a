"""The local stack with an R-Series POS (`make run RUN_ARGS="--pos r-series"`): the same moto, eCom simulator,
template API, queues and functions as `stack.LocalStack`, with `RSeriesSimulator` instead of the X-Series one and a
demo connection with `pos_profile` "r-series".

R-Series has no webhooks: every POS change reaches the sync by the change poller (its schedule, every
`schedule_seconds`), so the demo narrates arrival times that include up to one poll interval. The connection holds
the OAuth app's client id and secret and the refresh token of the merchant's grant (what `pos-ecom-sync connections
create --pos-profile r-series` stores); the workers refresh and rotate the pair themselves.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

from local_stack.demo import DEMO_CONNECTION_ID, DEMO_SECRETS, RSERIES_DEMO_APP
from local_stack.simulators.rseries import RSeriesSimulator
from local_stack.stack import LocalStack, StackConfig, narrate

# Simple (non-matrix) items seeded next to the matrices.
SIMPLE_ITEMS = 2


class RSeriesLocalStack(LocalStack):
    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self.rseries: RSeriesSimulator | None = None
        self.shipping_item_id: int | None = None

    # -- start -------------------------------------------------------------------------------------

    def _start_pos(self) -> None:
        self.rseries = RSeriesSimulator(
            client_id=RSERIES_DEMO_APP["client_id"],
            client_secret=RSERIES_DEMO_APP["client_secret"],
            seed=7,
            # The demo account has two shops with a register each, so its subscription allows two registers: the
            # rate limit's bucket is 100 drips draining at 1.5/s (KVH rate-limiting.md), not a one-register shop's.
            registers=2,
            narrate=lambda s: narrate(f"POS  | {s}"),
        )
        self.pos_url = self.rseries.start(port=self.config.pos_port)
        self.rseries.seed_catalog(self.config.families, self.config.variants_per_family, SIMPLE_ITEMS, seed=7)

    def _register_demo_connection(self) -> None:
        """An R-Series connection as the operator creates it: the merchant authorised the app (the simulator issues
        the grant), every shop is connected, the first register's shop is the register outlet and the primary."""
        from pos_ecom_sync.models.connection import Connection, ConnectionSecrets, PaymentMethodSetting
        from pos_ecom_sync.profiles.rseries.client import RSeriesClient
        from pos_ecom_sync.ratelimit import InMemoryRateBudget
        from pos_ecom_sync.secrets import write_connection_secrets
        from pos_ecom_sync.state.store import SyncStore

        assert self.rseries is not None
        grant = self.rseries.issue_tokens()
        # Setup reads with the grant's access token; the workers start from the same pair (its refresh token stays
        # valid: only a refresh's new access token, once used, revokes the refresh token it came from).
        pos = RSeriesClient(self.pos_url, InMemoryRateBudget(), token=grant["access_token"])
        try:
            account = pos.get_account_id()
            shops = sorted((str(s["shopID"]) for s in pos.list_shops() if s.get("archived") != "true"), key=int)
            register = pos.list_registers()[0]
        finally:
            pos.close()
        register_shop = str(register["shopID"])
        # Imported orders carry their shipping charge on a POS item (`orders.shipping`); catalog sync leaves it out.
        self.shipping_item_id = self.rseries.add_item(
            "Shipping (online orders)", 0.0, custom_sku="ECOM-SHIPPING", item_type="non_inventory"
        )
        connection = Connection(
            connection_id=DEMO_CONNECTION_ID,
            pos_profile="r-series",
            pos_base_url=self.pos_url,
            pos_account_id=account,
            ecom_base_url=self.ecom_url,
            online_register_id=str(register["registerID"]),
            register_outlet_id=register_shop,
            connected_outlet_ids=shops,
            primary_outlet_id=register_shop,
            shipping_product_id=str(self.shipping_item_id),
            # What the operator sets with `orders payment-method`: eCom's integrated method pays on the simulated
            # account's "Credit Card" type, so paid orders become completed sales.
            payment_methods={
                "Lightspeed Payments": PaymentMethodSetting(mode="integrated", payment_type_name="Credit Card")
            },
        )
        secrets = ConnectionSecrets.model_validate(
            {
                # No pos_webhook_token: R-Series sends no webhooks, so its connection needs none.
                **{k: v for k, v in DEMO_SECRETS.items() if k not in ("pos_access_token", "pos_webhook_token")},
                "pos_client_id": RSERIES_DEMO_APP["client_id"],
                "pos_client_secret": RSERIES_DEMO_APP["client_secret"],
                "pos_refresh_token": grant["refresh_token"],
                "pos_access_token": grant["access_token"],
            }
        )
        env = os.environ
        write_connection_secrets(
            self.session.client("secretsmanager"), env["SECRET_PREFIX"], DEMO_CONNECTION_ID, secrets
        )
        SyncStore(env["TABLE_NAME"], resource=self.session.resource("dynamodb")).save_connection(
            connection, create=True
        )

    def _subscribe_vendor_webhooks(self) -> None:
        """eCom's webhooks only: R-Series has none (KVH docs/endpoints/index.md), its changes are polled. `products`
        too: a merchant's eCom title edit flows back to the POS (seed 000; variant fields come with `variants`)."""
        from pos_ecom_sync.connectors.ecom import EcomClient
        from pos_ecom_sync.ratelimit import InMemoryRateBudget

        assert self.api is not None
        base = f"{self.api.url}/connections/{DEMO_CONNECTION_ID}/webhooks"
        ecom = EcomClient(
            self.ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        for group in ("orders", "variants", "shipments", "products"):
            ecom.create_webhook(group, "*", f"{base}/ecom")

    def stop(self) -> None:
        super().stop()
        if self.rseries:
            self.rseries.stop()

    def outputs(self) -> dict[str, str]:
        return {**super().outputs(), "PosProfile": "r-series"}

    def banner(self) -> str:
        assert self.rseries is not None
        lines = super().banner().splitlines()
        lines[2] = (
            f"  POS simulator  {self.pos_url}   (R-Series API V3, account {self.rseries.account_id}, OAuth app "
            f"{RSERIES_DEMO_APP['client_id']}; no webhooks: every POS change is polled)"
        )
        return "\n".join(lines)

    # -- demo ---------------------------------------------------------------------------------------

    def run_demo(self) -> None:
        """The changes an R-Series retailer makes; each arrives at the next poll."""
        assert self.rseries is not None and self.ecom is not None
        rng = random.Random(7)
        actions = [self._demo_stock_change, self._demo_product_edit, self._demo_outlets, self._demo_online_order]
        step = 0
        while not self.stopping.wait(self.config.demo_every_seconds):
            try:
                actions[step % len(actions)](rng)
            except Exception as exc:
                narrate(f"demo step failed: {exc!r}")
            step += 1
            self._narrate_queue_depths()

    def _connected_shops(self) -> list[str]:
        from pos_ecom_sync.state.store import SyncStore

        store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
        connection = store.get_connection(DEMO_CONNECTION_ID)
        return connection.connected_outlet_ids if connection else []

    def pos_total(self, item_id: int, shops: list[str]) -> int:
        """What eCom should show for an item: qoh summed over the connected shops, a negative shop counting 0 and the
        shopID "0" all-shops row never counted."""
        assert self.rseries is not None
        rows = self.rseries.item_shops(item_id)
        return sum(max(0, int(r["qoh"])) for r in rows if r["shopID"] != "0" and r["shopID"] in shops)

    def ecom_level(self, item_id: int) -> int | None:
        """The eCom stockLevel of the variant product sync linked to this item; None while it has none."""
        from pos_ecom_sync.state.store import SyncStore

        assert self.ecom is not None
        store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
        link = store.variant_link(DEMO_CONNECTION_ID, pos_product_id=str(item_id))
        if link is None or link.ecom_variant_id is None:
            return None
        variant = next((v for v in self.ecom.variants() if v["id"] == link.ecom_variant_id), None)
        return int(variant["stockLevel"]) if variant and variant.get("stockLevel") is not None else None

    def stocked_items(self) -> list[dict[str, Any]]:
        """The live items that carry stock (the shipping item does not)."""
        assert self.rseries is not None
        return [i for i in self.rseries.items() if i["itemID"] != str(self.shipping_item_id)]

    def _demo_stock_change(self, rng: random.Random) -> None:
        assert self.rseries is not None
        item = rng.choice(self.stocked_items())
        shop = rng.choice(self._connected_shops() or [s["shopID"] for s in self.rseries.shops()])
        level = rng.randint(-1, 20)
        narrate(f"demo | POS qoh of item {item['itemID']} ({item['description']}) at shop {shop} set to {level}")
        self.rseries.set_qoh(int(item["itemID"]), int(shop), level)
        watch = (f"eCom stock of item {item['itemID']}", [int(item["itemID"])], time.time())
        threading.Thread(target=self._narrate_rseries_stock, args=watch, daemon=True).start()

    def _demo_outlets(self, rng: random.Random) -> None:
        """The operator disconnects the shop that is not the register's (or connects it back), as `pos-ecom-sync
        connections set-outlets` does: every eCom total is recomputed in queued chunks."""
        from pos_ecom_sync.queues import ChangePublisher
        from pos_ecom_sync.state.store import SyncStore
        from pos_ecom_sync.stock.sync import request_outlet_change

        assert self.rseries is not None
        store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
        connection = store.get_connection(DEMO_CONNECTION_ID)
        assert connection is not None
        names = {s["shopID"]: s["name"] for s in self.rseries.shops()}
        keep = connection.register_outlet_id or next(iter(names))
        other = next(s for s in names if s != keep)
        disconnect = other in connection.connected_outlet_ids
        wanted = [s for s in names if s != other] if disconnect else list(names)
        narrate(f"demo | operator {'disconnects' if disconnect else 'reconnects'} shop {names[other]} (eCom stock)")
        publisher = ChangePublisher(
            lambda concern: os.environ[f"{concern.upper()}_QUEUE_URL"], client=self.session.client("sqs")
        )
        request_outlet_change(store, publisher, DEMO_CONNECTION_ID, wanted, keep)
        items = [int(i["itemID"]) for i in self.stocked_items()]
        watch = (f"eCom totals over {len(items)} items", items, time.time(), wanted)
        threading.Thread(target=self._narrate_rseries_stock, args=watch, daemon=True).start()

    def _narrate_rseries_stock(
        self, what: str, item_ids: list[int], since: float, shops: list[str] | None = None, timeout_s: float = 120
    ) -> None:
        """Watch eCom until these items show their POS totals, then say how long it took (a poll included)."""
        shops = self._connected_shops() if shops is None else shops
        while not self.stopping.wait(0.5):
            online = {item: self.ecom_level(item) for item in item_ids}
            if all(level is None for level in online.values()):
                narrate(f"eCom | {what}: not in eCom yet (R-Series product sync first has to create it)")
                return
            pending = [
                item for item, level in online.items() if level is not None and level != self.pos_total(item, shops)
            ]
            if not pending:
                shown = f"{next(iter(online.values()))}" if len(online) == 1 else "their POS totals"
                narrate(f"eCom | {what} now {shown}, {time.time() - since:.1f}s after the change (one poll)")
                return
            if time.time() > since + timeout_s:
                narrate(f"eCom | ! {what}: {len(pending)} still differ from the POS after {timeout_s:.0f}s (see logs)")
                return

    def _demo_product_edit(self, rng: random.Random) -> None:
        assert self.rseries is not None
        simple = [i for i in self.stocked_items() if i.get("itemMatrixID") in (None, "0")]
        item = rng.choice(simple or self.stocked_items())
        name = f"{item['description'].split(' (')[0]} ({rng.choice(['new season', 'bestseller', 'limited'])})"
        narrate(f"demo | POS item {item['itemID']} renamed to {name!r}")
        self.rseries.edit_item(int(item["itemID"]), description=name)
        watch = (int(item["itemID"]), name, time.time())
        threading.Thread(target=self._narrate_rename, args=watch, daemon=True).start()

    def _narrate_rename(self, item_id: int, name: str, since: float, timeout_s: float = 120.0) -> None:
        """Watch eCom until the product linked to the item shows the new name."""
        from pos_ecom_sync.state.store import SyncStore

        assert self.ecom is not None
        store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
        while not self.stopping.wait(0.5):
            link = store.variant_link(DEMO_CONNECTION_ID, pos_product_id=str(item_id))
            product = next((p for p in self.ecom.products() if link and p["id"] == link.ecom_product_id), None)
            if product is not None and name in str(product.get("title", "")):
                narrate(f"eCom | product {product['id']} now {product['title']!r}, {time.time() - since:.1f}s after")
                return
            if time.time() > since + timeout_s:
                narrate(f"eCom | ! item {item_id}: eCom does not show {name!r} after {timeout_s:.0f}s (see logs)")
                return

    def _demo_online_order(self, rng: random.Random) -> None:
        assert self.ecom is not None
        variants = [v for v in self.ecom.variants() if v.get("stockLevel", 0) > 0]
        if not variants:
            narrate("demo | nothing in stock online yet, so no online order this round")
            return
        variant = rng.choice(variants)
        narrate(f"demo | online order for 1 x {variant.get('sku')}")
        order = self.ecom.place_order(
            lines=[{"variant_id": variant["id"], "quantity": 1}], email="ana.silva@example.com"
        )
        threading.Thread(target=self._narrate_rseries_order, args=(order, time.time()), daemon=True).start()

    def _narrate_rseries_order(self, order: dict[str, Any], placed_at: float, timeout_s: float = 120.0) -> None:
        """Watch the POS until a sale names the order (`referenceNumber`, KVH sale.md), then say so."""
        assert self.rseries is not None
        wanted = {f"ecom-{order['id']}", str(order["id"]), str(order["number"])}
        while not self.stopping.wait(0.5):
            sale = next((s for s in self.rseries.sales() if s.get("referenceNumber") in wanted), None)
            if sale is not None:
                narrate(
                    f"POS  | online order {order['number']} arrived in {time.time() - placed_at:.1f}s as sale "
                    f"{sale['saleID']} (completed {sale.get('completed')})"
                )
                return
            if time.time() > placed_at + timeout_s:
                narrate(f"POS  | ! order {order['number']} has no R-Series sale after {timeout_s:.0f}s (see logs)")
                return
