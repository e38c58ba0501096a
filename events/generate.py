"""Writes the sample events under events/ (run from the repository root: `python -m events.generate`).

Every event is deterministic (fixed request ids and times), so the checked-in JSON only changes when a
body changes, and `--check` (run by tests/integration/test_sample_events.py) fails when a file is stale.
eCom signatures are computed here from the demo secret, so editing a body can never leave a wrong one.
The workers' SQS records carry `ChangeMessage`s made by the intake's own code (a webhook sample's message is
exactly what webhook_ingest queues for that delivery), so a model change can never leave a stale body.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pos_ecom_sync.connectors.ecom import OrderPage
from pos_ecom_sync.correlation import correlated
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.intake.webhooks import IncomingWebhook, WebhookIntake
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets, WebhookSecrets
from pos_ecom_sync.models.feeds import Cursor
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage, Concern, Source
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.profiles.xseries.webhooks import parse_pos_webhook
from pos_ecom_sync.queues import Outgoing

from local_stack.demo import DEMO_CONNECTION_ID, DEMO_SECRETS
from local_stack.lambda_events import scheduled_event, sqs_event
from tests.support import ecom_signature, ecom_webhook_event, pos_form, pos_webhook_event

EVENTS_DIR = Path(__file__).resolve().parent
REGION = "us-east-1"
API_ID = "a1b2c3d4e5"
API_HOST = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
STACK_NAME = "pos-ecom-sync"
ACCOUNT_ID = "123456789012"
# Documentation address ranges (RFC 5737) stand for the vendors' webhook senders.
POS_SENDER_IP = "203.0.113.10"
ECOM_SENDER_IP = "198.51.100.20"

# ---------------------------------------------------------------------------------------------- X-Series
# Webhook payloads use the API 1.0 shape (vendor-apis.md §1.8, §1.10): stock is `count`, numbers are often strings.
PRODUCT_ID = "0a1b0000-aaaa-11ee-8c90-000000000002"  # Harbor Tee / Navy / M (a variant)
PARENT_ID = "0a1b0000-aaaa-11ee-8c90-000000000001"
OUTLET_ID = "0a1b0000-cccc-11ee-8c90-000000000001"
SALE_ID = "0a1b0000-dddd-11ee-8c90-000000000010"
REGISTER_ID = "0a1b0000-eeee-11ee-8c90-000000000001"

POS_INVENTORY = {
    "id": "inv-0001",
    "product_id": PRODUCT_ID,
    "outlet_id": OUTLET_ID,
    "count": 5,
    "reorder_point": "2",
    "restock_level": "10",
    "attributed_cost": "12.00",
}

POS_PRODUCT = {
    "id": PRODUCT_ID,
    "source_id": "",
    "variant_parent_id": PARENT_ID,
    "name": "Harbor Tee / Navy / M",
    "base_name": "Harbor Tee",
    "handle": "harbortee",
    "sku": "HT-NAVY-M",
    "active": True,
    "has_inventory": True,
    "is_composite": False,
    "description": "<p>Heavyweight cotton tee.</p>",
    "button_order": "0",
    "attributed_cost": "12.00",
    "supply_price": "12.00",
    "price": "30.43478",
    "variant_option_one_name": "Colour",
    "variant_option_one_value": "Navy",
    "variant_option_two_name": "Size",
    "variant_option_two_value": "M",
    "variant_option_three_name": "",
    "variant_option_three_value": "",
    "brand": {"id": "0a1b0000-bbbb-11ee-8c90-000000000001", "name": "Dockside"},
    "categories": [],
    "inventory": [
        {
            "id": "inv-0001",
            "outlet_id": OUTLET_ID,
            "product_id": PRODUCT_ID,
            "count": 5,
            "attributed_cost": "12.00",
            "reorder_point": "2",
            "restock_level": "10",
        }
    ],
    "price_book_entries": [
        {
            "id": "pbe-0002",
            "product_id": PRODUCT_ID,
            "price_book_id": "pb-general",
            "price_book_name": "General Price Book (All Products)",
            "type": "BASE",
            "outlet_name": "",
            "outlet_id": "",
            "customer_group_name": "All Customers",
            "customer_group_id": "grp-all",
            "price": 30.43478,
            "loyalty_value": None,
            "min_units": "",
            "max_units": "",
            "valid_from": "",
            "valid_to": "",
            "taxes": [{"outlet_id": OUTLET_ID, "tax_id": "tax-gst", "tax_rate": 0.15, "tax_name": "GST"}],
        }
    ],
    "created_at": "2026-03-01 10:00:00",
    "updated_at": "2026-11-22 08:58:30",
    "deleted_at": "",
}

POS_SALE = {
    "id": SALE_ID,
    "source": "USER",
    "source_id": "ecom-10042",
    "register_id": REGISTER_ID,
    "customer_id": "0a1b0000-1111-11ee-8c90-000000000005",
    "user_id": "0a1b0000-ffff-11ee-8c90-000000000001",
    "sale_date": "2026-11-22 09:00:00",
    "created_at": "2026-11-22 09:00:01",
    "updated_at": "2026-11-22 15:42:10",
    "total_price": 55.65,
    "total_cost": 24.0,
    "total_tax": 8.35,
    "note": "",
    "status": "DISPATCHED_CLOSED",
    "short_code": "k3vq9z",
    "invoice_number": "WEB-1042",
    "return_for": None,
    "user": {"id": "0a1b0000-ffff-11ee-8c90-000000000001", "name": "online", "display_name": "Online Store"},
    "register_sale_products": [
        {
            "id": "li-1",
            "product_id": PRODUCT_ID,
            "register_id": REGISTER_ID,
            "sequence": "0",
            "handle": "harbortee",
            "sku": "HT-NAVY-M",
            "name": "Harbor Tee / Navy / M",
            "quantity": 2,
            "price": 27.825,
            "cost": 12.0,
            "price_set": 1,
            "discount": 0,
            "loyalty_value": 0,
            "tax": 4.17391,
            "tax_id": "tax-gst",
            "tax_name": "GST",
            "tax_rate": 0.15,
            "tax_total": 8.35,
            "price_total": 55.65,
            "display_retail_price_tax_inclusive": "1",
            "status": "CONFIRMED",
            "attributes": [{"name": "line_note", "value": ""}],
        }
    ],
    "totals": {"total_tax": 8.35, "total_price": 55.65, "total_payment": 64.0, "total_to_pay": 0},
    "register_sale_payments": [
        {
            "id": "pay-1",
            "payment_type_id": 7,
            "retailer_payment_type_id": "pt-lsp",
            "name": "Lightspeed Payments",
            "label": "Lightspeed Payments",
            "payment_date": "2026-11-22 09:00:02",
            "amount": 64.0,
        }
    ],
    "taxes": [{"id": "tax-gst", "name": "GST", "rate": 0.15, "tax": 8.35}],
}

# The change feed (API 2.0, vendor-apis.md §1.4) the poller walks: `version` orders every row; ids stay the same.
POS_VERSION = 8_812_361_205  # the version stamp of the variant row below; the parent's is older
CATEGORY_ID = "0a1b0000-bbbb-11ee-8c90-000000000010"

POS_PRODUCT_ROW = {
    "id": PRODUCT_ID,
    "source": "USER",
    "source_id": None,
    "source_variant_id": None,
    "variant_parent_id": PARENT_ID,
    "name": "Harbor Tee",
    "variant_name": "Harbor Tee / Navy / M",
    "handle": "harbortee",
    "sku": "HT-NAVY-M",
    "description": "<p>Heavyweight cotton tee.</p>",
    "active": True,
    "is_active": True,
    "has_inventory": True,
    "has_variants": False,
    "is_composite": False,
    "brand_id": "0a1b0000-bbbb-11ee-8c90-000000000001",
    "brand": {"id": "0a1b0000-bbbb-11ee-8c90-000000000001", "name": "Dockside"},
    "product_type_id": CATEGORY_ID,
    "type": {"id": CATEGORY_ID, "name": "Tees"},
    "categories": [],
    "tag_ids": [],
    "variant_options": [
        {"id": "0a1b0000-9999-11ee-8c90-000000000001", "name": "Colour", "value": "Navy"},
        {"id": "0a1b0000-9999-11ee-8c90-000000000002", "name": "Size", "value": "M"},
    ],
    "product_codes": [{"type": "EAN", "code": "9400000000012"}],
    "price_including_tax": 35.0,
    "price_excluding_tax": 30.43478,
    "supply_price": 12.0,
    "weight": 0.2,
    "weight_unit": "KG",
    "length": 30.0,
    "width": 25.0,
    "height": 2.0,
    "dimensions_unit": "CM",
    "images": [
        {
            "id": "0a1b0000-6666-11ee-8c90-000000000002",
            "url": "https://images.example.com/harbor-tee-navy.jpg",
            "sizes": {
                "original": "https://images.example.com/harbor-tee-navy.jpg",
                "standard": "https://images.example.com/harbor-tee-navy.jpg",
                "thumb": "https://images.example.com/harbor-tee-navy.jpg",
            },
        }
    ],
    "image_url": "https://images.example.com/harbor-tee-navy.jpg",
    "created_at": "2026-03-01T10:00:00+00:00",
    "updated_at": "2026-11-22T08:58:30+00:00",
    "deleted_at": None,
    "version": POS_VERSION,
}

# The family's parent, changed by the same edit (the name and description live on the family) and read on the
# same page: it shares the variant's message group, so one worker syncs the family.
POS_PARENT_ROW = {
    **POS_PRODUCT_ROW,
    "id": PARENT_ID,
    "variant_parent_id": None,
    "variant_name": "Harbor Tee",
    "sku": "HT",
    "has_inventory": False,
    "has_variants": True,
    "variant_count": 6,
    "variant_options": [],
    "product_codes": [{"type": "CUSTOM", "code": "HT"}],
    "version": POS_VERSION - 3,
}

POS_INVENTORY_ROW = {
    "id": "inv-0001",
    "product_id": PRODUCT_ID,
    "outlet_id": OUTLET_ID,
    "inventory_level": 5,
    "current_amount": 5,
    "average_cost": 12.0,
    "reorder_point": 2,
    "reorder_amount": 10,
    "version": POS_VERSION + 7,
}

# ---------------------------------------------------------------------------------------------- eCom
# JSON bodies: the resource in its singular envelope (vendor-apis.md §3.4, §3.6); ids are integers.
ORDER_ID = 5501042
ECOM = "https://api.webshopapp.com/en"

ECOM_ORDER = {
    "id": ORDER_ID,
    "number": "ORD10042",
    "status": "processing_awaiting_shipment",
    "paymentStatus": "paid",
    "shipmentStatus": "not_shipped",
    "channel": "main",
    "createdAt": "2026-11-22T08:59:58+00:00",
    "updatedAt": "2026-11-22T09:00:00+00:00",
    "priceExcl": 55.65,
    "priceIncl": 64.0,
    "email": "mira.okafor@example.com",
    "firstname": "Mira",
    "lastname": "Okafor",
    "isNewCustomer": True,
    "paymentTitle": "Lightspeed Payments",
    "shipmentTitle": "Courier NZ",
    "shipmentIsPickup": False,
    "addressShippingStreet": "Quay St",
    "addressShippingNumber": "12",
    "addressShippingZipcode": "6011",
    "addressShippingCity": "Wellington",
    "customer": {"resource": {"id": 70231, "url": "customers/70231", "link": f"{ECOM}/customers/70231.json"}},
    "products": {
        "resource": {
            "id": False,
            "url": f"orders/{ORDER_ID}/products",
            "link": f"{ECOM}/orders/{ORDER_ID}/products.json",
        }
    },
}

# The same order once POS dispatched it (the status change the worker mirrors).
ECOM_ORDER_SHIPPED = {
    **ECOM_ORDER,
    "status": "completed_shipped",
    "shipmentStatus": "shipped",
    "updatedAt": "2026-11-22T15:42:15+00:00",
}

ECOM_VARIANT = {
    "id": 880001,
    "isDefault": True,
    "sortOrder": 1,
    "title": "Navy, M",
    "sku": "HT-NAVY-M",
    "ean": "9400000000012",
    "articleCode": "HT-NAVY-M",
    "priceExcl": 27.83,
    "priceIncl": 32.0,
    "priceCost": 12.0,
    "oldPriceExcl": 0,
    "oldPriceIncl": 0,
    "stockTracking": "enabled",
    "stockLevel": 7,
    "stockAlert": 2,
    "stockMinimum": 0,
    "stockSold": 43,
    "weight": 200,
    "weightValue": "0.2",
    "weightUnit": "kg",
    "options": [],
    "createdAt": "2026-03-01T10:05:00+00:00",
    "updatedAt": "2026-11-22T09:00:06+00:00",
    "product": {"resource": {"id": 40123, "url": "products/40123", "link": f"{ECOM}/products/40123.json"}},
}


def ecom_body(envelope: str, resource: dict[str, Any]) -> bytes:
    """The raw bytes eCom sends (compact JSON); the signature covers exactly these bytes."""
    return json.dumps({envelope: resource}, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class ApiSample:
    name: str
    at: datetime  # when API Gateway received it
    source_ip: str
    build: Callable[[], dict[str, Any]]


def _pos(webhook_type: str, payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    # HTTP API hands non-text bodies (form encoding included) to Lambda base64-encoded.
    return lambda: pos_webhook_event(DEMO_CONNECTION_ID, pos_form(webhook_type, payload), base64_body=True)


def _ecom(body: bytes, signature: str | None = None) -> Callable[[], dict[str, Any]]:
    headers = {} if signature is None else {"x-signature": signature}
    return lambda: ecom_webhook_event(DEMO_CONNECTION_ID, body, headers=headers)


def _forged_order() -> Callable[[], dict[str, Any]]:
    """A genuine delivery's signature replayed on an edited body (an unpaid order claimed as paid)."""
    genuine = ecom_body("order", {**ECOM_ORDER, "paymentStatus": "not_paid"})
    edited = ecom_body("order", ECOM_ORDER)
    return _ecom(edited, signature=ecom_signature(genuine, DEMO_SECRETS["ecom_webhook_secret"]))


def _at(hour: int, minute: int, second: int) -> datetime:
    return datetime(2026, 11, 22, hour, minute, second, tzinfo=UTC)


API_SAMPLES = [
    ApiSample("pos_inventory_update", _at(8, 59, 31), POS_SENDER_IP, _pos("inventory.update", POS_INVENTORY)),
    ApiSample("pos_product_update", _at(8, 58, 31), POS_SENDER_IP, _pos("product.update", POS_PRODUCT)),
    ApiSample("pos_sale_update", _at(15, 42, 11), POS_SENDER_IP, _pos("sale.update", POS_SALE)),
    ApiSample("ecom_order_created", _at(9, 0, 1), ECOM_SENDER_IP, _ecom(ecom_body("order", ECOM_ORDER))),
    ApiSample("ecom_order_updated", _at(15, 42, 16), ECOM_SENDER_IP, _ecom(ecom_body("order", ECOM_ORDER_SHIPPED))),
    ApiSample("ecom_variant_updated", _at(9, 0, 7), ECOM_SENDER_IP, _ecom(ecom_body("variant", ECOM_VARIANT))),
    ApiSample("ecom_bad_signature", _at(9, 3, 0), ECOM_SENDER_IP, _forged_order()),
]


def _digest(name: str, size: int) -> bytes:
    return hashlib.sha256(f"pos-ecom-sync/events/{name}".encode()).digest()[:size]


def _request_id(name: str) -> str:
    """API Gateway's request id for the sample `name`: webhook_ingest makes it the change's correlation id."""
    return base64.b64encode(_digest(name, 11)).decode()


def _as_delivered(sample: ApiSample) -> dict[str, Any]:
    """Pin what API Gateway makes up per request (ids, times, host headers) to fixed, realistic values."""
    event = sample.build()
    raw_size = len(base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode())
    epoch = int(sample.at.timestamp())
    event["headers"].update(
        {
            "content-length": str(raw_size),
            "host": API_HOST,
            "x-amzn-trace-id": f"Root=1-{epoch:08x}-{_digest(sample.name, 12).hex()}",
            "x-forwarded-for": sample.source_ip,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
    )
    event["headers"] = dict(sorted(event["headers"].items()))
    if not event["queryStringParameters"]:
        del event["queryStringParameters"]  # HTTP API leaves the key out when there is no query string
    context = event["requestContext"]
    context.update(
        {
            "apiId": API_ID,
            "domainName": API_HOST,
            "domainPrefix": API_ID,
            "http": {**context["http"], "sourceIp": sample.source_ip},
            # HTTP API request ids are 16 base64 characters, e.g. "JKJaXmPLvHcESHA=".
            "requestId": _request_id(sample.name),
            "time": sample.at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": epoch * 1000,
        }
    )
    event["requestContext"] = {key: context[key] for key in sorted(context)}
    return event


def _scheduled() -> dict[str, Any]:
    rule = f"{STACK_NAME}-ChangePollerFunctionEveryMinute-1X2Y3Z4A5B6C"
    event = scheduled_event(rule, REGION)
    event.update({"id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "time": "2026-11-22T09:01:00Z"})
    return event


def _reconcile_tick() -> dict[str, Any]:
    event = scheduled_event(f"{STACK_NAME}-ReconcileFunctionReconcileTick-7D8E9F0A1B2C", REGION)
    event.update({"id": "0b5e2f5c-6a4d-4f1e-9f43-2f7c1d9e8a61", "time": "2026-11-22T09:15:00Z"})
    return event


# ---------------------------------------------------------------------------------------------- SQS workers
# Each worker's batch is what Lambda's SQS event source delivers from its FIFO queue (template.yaml names them
# `${AWS::StackName}-<concern>.fifo`). The messages come from the intake's own code: WebhookIntake.accept on a
# webhook_ingest sample (so its body is what that delivery queued) or ChangePoller.poll on a page of the feed.
DEMO_CONNECTION = Connection(
    connection_id=DEMO_CONNECTION_ID,
    pos_base_url="https://demo.retail.lightspeed.app",
    ecom_base_url="https://api.webshopapp.com",
    created_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
)
# The Lambda's gap between API Gateway receiving a delivery and the intake stamping `received_at`.
INGEST_LAG = timedelta(milliseconds=142)
# A message is sent a few ms after it is made; the worker's event source receives it shortly after.
SEND_LAG = timedelta(milliseconds=38)
RECEIVE_LAG = timedelta(milliseconds=61)


def queue_arn(concern: Concern) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{STACK_NAME}-{concern}.fifo"


@dataclass(frozen=True)
class Sent:
    """One message as the intake sent it."""

    outgoing: Outgoing
    at: datetime  # SentTimestamp
    function: str  # the sending function (logical id): SenderId is its role id and session (the function name)
    trace_root: str  # the X-Ray trace the send belongs to


class _Intake:
    """The demo connection as WebhookIntake sees it; records what it publishes instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def get_connection(self, connection_id: str) -> Connection | None:
        return DEMO_CONNECTION if connection_id == DEMO_CONNECTION_ID else None

    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool:
        return False

    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None:
        return None

    def get(self, connection_id: str) -> WebhookSecrets:
        return ConnectionSecrets.model_validate(DEMO_SECRETS).webhook_part()

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        return None

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)

    def backlog(self, concern: Concern) -> int:
        return 0


def _trace_root(at: datetime, name: str) -> str:
    return f"Root=1-{int(at.timestamp()):08x}-{_digest(name, 12).hex()}"


def _delivered(name: str, concern: Concern | None = None) -> Sent:
    """The message webhook_ingest queues for the webhook_ingest sample `name` (authenticated and parsed); an eCom
    order delivery queues two (import and status hint): `concern` picks one."""
    sample = next(s for s in API_SAMPLES if s.name == name)
    event = sample.build()
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    source: Source = "pos" if event["rawPath"].endswith("/pos") else "ecom"
    webhook = IncomingWebhook(source, DEMO_CONNECTION_ID, body, event["headers"], event["queryStringParameters"] or {})
    intake = _Intake()
    received_at = sample.at + INGEST_LAG
    with correlated(_request_id(sample.name)):
        WebhookIntake(intake, intake, intake, dedup_ttl_seconds=3600, pos_webhooks=lambda _: parse_pos_webhook).accept(
            webhook, now=received_at
        )
    [outgoing] = [o for o in intake.sent if concern is None or o.message.concern == concern]
    return Sent(outgoing, received_at + SEND_LAG, "WebhookIngestFunction", _trace_root(sample.at, sample.name))


@dataclass(frozen=True)
class _Page:
    items: list[dict[str, Any]]

    @property
    def max_version(self) -> int | None:
        return max((int(row["version"]) for row in self.items), default=None)


class _Feeds:
    """One poll of the demo connection's feeds: `rows` per X-Series resource, no eCom order changed. The demo
    connection has no online price book, so its price-book feed and the links it looks families up in stay empty."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = rows

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> _Page:
        return _Page(self.rows.get(resource, []))

    def list_price_book_product_changes(self, after: int | None, page_size: int = 200) -> _Page:
        return _Page([])

    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None:
        return None

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        return OrderPage([], None)

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return Cursor(feed, None)

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        return True


def _polled(tick: datetime, resource: str, rows: list[dict[str, Any]]) -> list[Sent]:
    """What the EveryMinute poll at `tick` queues for one page of an X-Series feed."""
    feeds, intake = _Feeds({resource: rows}), _Intake()
    read_at = tick + timedelta(milliseconds=412)  # the poller stamps a page when it has read it
    with correlated(f"poll-{uuid.UUID(bytes=_digest(f'poll/{tick.isoformat()}', 16))}"):  # the run's request id
        ChangePoller(feeds, intake, clock=lambda: read_at).poll(DEMO_CONNECTION, XSeriesFeeds(feeds), feeds)
    root = _trace_root(tick, f"poll/{tick.isoformat()}")
    return [Sent(outgoing, read_at + SEND_LAG, "ChangePollerFunction", root) for outgoing in intake.sent]


@dataclass(frozen=True)
class SqsSample:
    path: str  # under events/, e.g. "order_import/ecom_order_created.json"
    concern: Concern
    build: Callable[[], list[Sent]]


SQS_SAMPLES = [
    # The poll after the product edit: the family's page (parent and variant) queued as one message for the family.
    SqsSample(
        "product_sync/pos_product_changed.json",
        "products",
        lambda: _polled(_at(8, 59, 0), "products", [POS_PARENT_ROW, POS_PRODUCT_ROW]),
    ),
    # The next poll reads the outlet's new level with its version (the webhook's 1.0 `count` has none).
    SqsSample(
        "stock_sync/pos_inventory_changed.json",
        "stock",
        lambda: _polled(_at(9, 0, 0), "inventory", [POS_INVENTORY_ROW]),
    ),
    # stockLevel 7 typed in the eCom back office where the POS total is 5: the worker puts 5 back.
    SqsSample("stock_sync/ecom_variant_edited.json", "stock", lambda: [_delivered("ecom_variant_updated")]),
    SqsSample("order_import/ecom_order_created.json", "orders", lambda: [_delivered("ecom_order_created", "orders")]),
    SqsSample(
        "status_sync/ecom_order_updated.json", "statuses", lambda: [_delivered("ecom_order_updated", "statuses")]
    ),
    SqsSample("status_sync/pos_sale_updated.json", "statuses", lambda: [_delivered("pos_sale_update")]),
]


def _epoch_ms(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _sender_id(function: str) -> str:
    """An assumed role's SenderId: the role's unique id (AROA + 17) and the session, i.e. the function's name."""
    role_id = "AROA" + base64.b32encode(_digest(f"role/{function}", 15)).decode()[:17]
    return f"{role_id}:{STACK_NAME}-{function}-{_digest(function, 6).hex().upper()}"


def _sqs_batch(sample: SqsSample) -> dict[str, Any]:
    """The batch as Lambda delivers it: one ReceiveMessage of the whole page, in send order."""
    sent = sample.build()
    concerns = {s.outgoing.message.concern for s in sent}
    if concerns != {sample.concern}:
        raise ValueError(f"{sample.path}: the intake queued on {sorted(concerns)}, not on {sample.concern}")
    received = _epoch_ms(max(s.at for s in sent) + RECEIVE_LAG)
    messages = []
    for index, item in enumerate(sent):
        key = f"{sample.path}#{index}"
        message: ChangeMessage = item.outgoing.message
        sent_ms = _epoch_ms(item.at)
        messages.append(
            {
                "MessageId": str(uuid.UUID(bytes=_digest(key, 16), version=4)),
                # Receipt handles are long opaque base64 strings starting "AQEB".
                "ReceiptHandle": "AQEB"
                + base64.b64encode(b"".join(_digest(f"{key}/{n}", 32) for n in range(6))).decode(),
                "Body": message.model_dump_json(),
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "AWSTraceHeader": f"{item.trace_root};Parent={_digest(f'{key}/span', 8).hex()};Sampled=1",
                    "SentTimestamp": str(sent_ms),
                    # FIFO sequence numbers: 20 digits, growing with each send to the queue.
                    "SequenceNumber": str(18_849_000_000_000_000_000 + sent_ms * 1000 + index),
                    "MessageGroupId": message.message_group_id,
                    "SenderId": _sender_id(item.function),
                    "MessageDeduplicationId": message.deduplication_id(item.outgoing.delivery_key),
                    "ApproximateFirstReceiveTimestamp": str(received),
                },
            }
        )
    return sqs_event(messages, queue_arn(sample.concern), REGION)


def build_events() -> dict[str, dict[str, Any]]:
    """Every sample event, keyed by its path relative to events/."""
    events = {f"webhook_ingest/{s.name}.json": _as_delivered(s) for s in API_SAMPLES}
    events["change_poller/scheduled.json"] = _scheduled()
    # An operator's run for one connection, e.g. `aws lambda invoke --payload file://one_connection.json`.
    events["change_poller/one_connection.json"] = {"connection_id": DEMO_CONNECTION_ID}
    events["reconcile/scheduled.json"] = _reconcile_tick()
    # An operator's full compare of one connection now, whatever the interval says.
    events["reconcile/one_connection.json"] = {"connection_id": DEMO_CONNECTION_ID, "force": True}
    events.update({sample.path: _sqs_batch(sample) for sample in SQS_SAMPLES})
    return events


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"


def write_events(root: Path = EVENTS_DIR) -> list[Path]:
    written = []
    for relative, event in build_events().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(event), encoding="utf-8")
        written.append(path)
    return written


def out_of_date(root: Path = EVENTS_DIR) -> list[str]:
    """Files that differ from what the generator makes, are missing, or are no longer generated."""
    expected = {relative: render(event) for relative, event in build_events().items()}
    problems = []
    for relative, text in expected.items():
        path = root / relative
        if not path.exists():
            problems.append(f"{relative}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{relative}: differs")
    for folder in {Path(relative).parent for relative in expected}:
        for path in sorted((root / folder).glob("*.json")):
            relative = path.relative_to(root).as_posix()
            if relative not in expected:
                problems.append(f"{relative}: not generated (stale?)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m events.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale or missing files (exit 1 if any)")
    parser.add_argument("--out", type=Path, default=EVENTS_DIR, help="folder to write to (default: events/)")
    args = parser.parse_args(argv)
    if args.check:
        problems = out_of_date(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in write_events(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
