"""Every connector method sends only what the vendor documents: a declared route, declared query parameters, and a
body with the required fields and known enum values. A method added without a contract route fails here, as does a
method missing from the table below (so a new vendor call cannot slip past the contract)."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.profiles.rseries.client import FEED_ENTITIES, RSeriesClient, price_levels_body
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.contract import load as load_contract

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
SALE_ID = "0a1b0000-5a1e-11ee-8c90-000000000001"


def _recording_transport(sent: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    return httpx.MockTransport(answer)


def _violations(api: str, sent: list[httpx.Request]) -> list[str]:
    contract = load_contract(api)
    found = []
    for request in sent:
        query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        content = request.content
        if not content:
            body: Any = None
        elif "form" in request.headers.get("content-type", ""):
            body = dict(parse_qsl(content.decode(), keep_blank_values=True))
        else:
            body = json.loads(content)
        found += [str(v) for v in contract.check_request(request.method, request.url.path, query, body)]
    return found


# A sale request as order import builds it (its exact body is checked on the real path by the integration tier).
SALE_REQUEST = {
    "id": SALE_ID,
    "source": {"author_id": "0a1b0000-0000-11ee-8c90-0000000000aa", "id": "ecom-5501001", "type": "pos-ecom-sync"},
    "state": "pending",
    "register_id": "0a1b0000-0000-11ee-8c90-0000000000bb",
    "line_items": [
        {
            "product": {"id": "0a1b0000-aaaa-11ee-8c90-000000000002"},
            "quantity": 1,
            "pricing": {"price": 10.0},
            "tax": {"id": "0a1b0000-0000-11ee-8c90-0000000000cc", "amount": 1.5},
        }
    ],
}
XSERIES_CALLS: dict[str, Callable[[XSeriesClient], Any]] = {
    "list_changes": lambda c: [c.list_changes(feed, 8812345000) for feed in ("products", "customers")],
    "list_registers": lambda c: c.list_registers(),
    "list_payment_types": lambda c: c.list_payment_types(),
    "list_users": lambda c: c.list_users(),
    "list_taxes": lambda c: c.list_taxes(),
    "get_product": lambda c: c.get_product("p-1"),
    "find_products_by_sku": lambda c: c.find_products_by_sku("tee-s"),
    "create_product": lambda c: c.create_product(
        {"name": "Shipping", "sku": "ECOM-SHIPPING", "price_excluding_tax": 0}
    ),
    "search_products": lambda c: c.search_products(variant_parent_id="p-1", deleted=True),
    "list_family": lambda c: c.list_family("p-1", {"id": "p-1"}),
    "list_product_inventory": lambda c: c.list_product_inventory("p-1"),
    "list_price_book_entries": lambda c: c.list_price_book_entries("pb-1", ["p-1", "p-2"]),
    "list_price_book_product_changes": lambda c: c.list_price_book_product_changes(8812345000),
    "search_customers": lambda c: c.search_customers("ann@example.com"),
    "create_customer": lambda c: c.create_customer("Ann", "Lee", "ann@example.com"),
    "create_sale": lambda c: c.create_sale(SALE_REQUEST),
    "find_sale": lambda c: c.find_sale(SALE_ID),
    "get_sale": lambda c: c.get_sale(SALE_ID),
    "list_fulfillments": lambda c: c.list_fulfillments(SALE_ID),
    "update_register_sale": lambda c: c.update_register_sale(
        {"id": SALE_ID, "register_id": "r-1", "user_id": "u-1", "status": "VOIDED", "register_sale_products": []}
    ),
    "fulfill_sale": lambda c: c.fulfill_sale(SALE_ID),
    "pack_fulfillment": lambda c: c.pack_fulfillment("1001", 3, [("line-1", Decimal("1"))]),
    "list_webhooks": lambda c: c.list_webhooks(),
    "create_webhook": lambda c: c.create_webhook("https://example.com/hook", "inventory.update"),
}
ECOM_CALLS: dict[str, Callable[[EcomClient], Any]] = {
    "list_orders": lambda c: c.list_orders(SINCE),
    "get_order": lambda c: c.get_order(5501001),
    "list_order_products": lambda c: c.list_order_products(5501001),
    "order_with_lines": lambda c: c.order_with_lines(5501001),
    "update_order": lambda c: c.update_order(5501001, {"paymentStatus": "paid"}),
    "credit_order": lambda c: c.credit_order(5501001, [(7001, 1)]),
    "get_shipment": lambda c: c.get_shipment(9001),
    "get_product": lambda c: c.get_product(40001),
    "list_products_created_since": lambda c: c.list_products_created_since(SINCE),
    "create_product": lambda c: c.create_product({"title": "Tee", "visibility": "visible"}),
    "update_product": lambda c: c.update_product(40001, {"title": "Tee", "brand": None}),
    "delete_product": lambda c: c.delete_product(40001),
    "list_variants": lambda c: c.list_variants(product_id=40001),
    "list_variants_since": lambda c: c.list_variants_since(50001),
    "list_products_since": lambda c: c.list_products_since(40001),
    "create_variant": lambda c: c.create_variant({"product": 40001, "title": "S", "sku": "TEE-S"}),
    "update_variant": lambda c: c.update_variant(50001, {"stockLevel": 3}),
    "set_variant_image": lambda c: c.set_variant_image(50001, 60001),
    "delete_variant": lambda c: c.delete_variant(50001),
    "list_product_images": lambda c: c.list_product_images(40001),
    "create_product_image": lambda c: c.create_product_image(40001, "https://images.example.com/a.jpg"),
    "delete_product_image": lambda c: c.delete_product_image(40001, 60001),
    "list_brands": lambda c: c.list_brands(),
    "get_brand": lambda c: c.get_brand(80001),
    "create_brand": lambda c: c.create_brand("Northwind"),
    "list_categories": lambda c: c.list_categories(),
    "create_category": lambda c: c.create_category("Tops"),
    "list_category_links": lambda c: c.list_category_links(40001),
    "list_category_links_since": lambda c: c.list_category_links_since(120001),
    "link_category": lambda c: c.link_category(40001, 70001),
    "list_webhooks": lambda c: c.list_webhooks(),
    "create_webhook": lambda c: c.create_webhook("orders", "*", "https://example.com/hook"),
}
# A sale as order import builds it for R-Series (KVH tutorials/sales.md, salepayment.md remoteReference).
RSERIES_SALE_REQUEST = {
    "shopID": "1",
    "registerID": "1",
    "employeeID": "1",
    "customerID": "7",
    "completed": "true",
    "referenceNumber": "5501001",
    "referenceNumberSource": "eCom",
    "SaleLines": {"SaleLine": [{"itemID": "41", "unitQuantity": "1", "unitPrice": "10.00"}]},
    "SalePayments": {"SalePayment": [{"paymentTypeID": "7", "amount": "10.00", "remoteReference": "ecom-5501001"}]},
}
RSERIES_CALLS: dict[str, Callable[[RSeriesClient], Any]] = {
    "get_account_id": lambda c: c.get_account_id(),  # the client below knows no account: it asks
    "list_shops": lambda c: c.list_shops(),
    "list_registers": lambda c: c.list_registers(),
    "list_payment_types": lambda c: c.list_payment_types(),
    "list_price_levels": lambda c: c.list_price_levels(),
    "find_price_level": lambda c: c.find_price_level("Online"),
    "list_categories": lambda c: c.list_categories(),
    "list_manufacturers": lambda c: c.list_manufacturers(),
    "find_manufacturer": lambda c: c.find_manufacturer("Northwind"),
    "create_manufacturer": lambda c: c.create_manufacturer("Northwind"),
    "list_using": lambda c: [
        c.list_using(entity, field, "5", after_id=after)
        for entity in ("Item", "ItemMatrix")
        for field in ("categoryID", "manufacturerID")
        for after in (None, "41")
    ],
    "list_changes": lambda c: [c.list_changes(entity, 1_796_000_000) for entity in FEED_ENTITIES],
    "next_page": lambda c: c.next_page(
        "Item", "https://api.lightspeedapp.com/API/V3/Account/88000/Item.json?sort=timeStamp&limit=100&after=abc"
    ),
    "get_item": lambda c: c.get_item("41", ["ItemShops", "ItemAttributes"]),
    "get_items": lambda c: c.get_items(["41", "42"]),
    "list_matrix_items": lambda c: c.list_matrix_items("3"),
    "get_matrix": lambda c: c.get_matrix("3"),
    "list_item_shops": lambda c: c.list_item_shops(["41", "42"]),
    "find_items_by_code": lambda c: c.find_items_by_code("9400000000009"),
    "find_items_by_sku": lambda c: c.find_items_by_sku("TEE-S"),
    "update_item": lambda c: c.update_item(
        "41",
        {
            "description": "Tee",
            "categoryID": "2",
            "manufacturerID": "3",
            "customSku": "TEE-S",
            "upc": "",
            "ean": "9400000000009",
            **price_levels_body({"1": Decimal("15"), "3": Decimal("12.50")}),
        },
    ),
    "set_item_price": lambda c: c.set_item_price("41", "3", Decimal("12.50")),
    "update_matrix": lambda c: c.update_matrix("3", {"description": "Tee"}),
    "find_customers_by_email": lambda c: c.find_customers_by_email("ann@example.com"),
    "create_customer": lambda c: c.create_customer("Ann", "Lee", "ann@example.com"),
    "create_sale": lambda c: c.create_sale(RSERIES_SALE_REQUEST),
    "find_sale_by_reference": lambda c: c.find_sale_by_reference("5501001", "eCom"),
    "get_sale": lambda c: c.get_sale("156"),
    "update_sale": lambda c: c.update_sale("156", {"voided": "true"}),
    "get_sale_lines": lambda c: c.get_sale_lines(["1234", "1235"]),
}
# Not vendor calls.
NOT_CALLS = {"calls", "close"}


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")} - NOT_CALLS


@pytest.mark.parametrize("cls", [XSeriesClient, EcomClient, RSeriesClient])
def test_every_public_connector_method_is_in_the_contract_check(cls: type) -> None:
    table = {XSeriesClient: XSERIES_CALLS, EcomClient: ECOM_CALLS, RSeriesClient: RSERIES_CALLS}[cls]
    assert sorted(_public_methods(cls) - set(table)) == [], "add the new method to this test's table"


@pytest.mark.parametrize("name", sorted(XSERIES_CALLS))
def test_xseries_connector_requests_are_declared_by_the_contract(name: str) -> None:
    sent: list[httpx.Request] = []
    client = XSeriesClient(
        "https://demo.retail.lightspeed.app", "token", InMemoryRateBudget(), transport=_recording_transport(sent)
    )
    with contextlib.suppress(Exception):  # an empty answer may not parse: only the request matters here
        XSERIES_CALLS[name](client)
    assert sent, f"{name} sent no request"
    assert _violations("xseries", sent) == []


@pytest.mark.parametrize("name", sorted(ECOM_CALLS))
def test_ecom_connector_requests_are_declared_by_the_contract(name: str) -> None:
    sent: list[httpx.Request] = []
    client = EcomClient(
        "https://api.webshopapp.com", "key", "secret", InMemoryRateBudget(), transport=_recording_transport(sent)
    )
    with contextlib.suppress(Exception):  # an empty answer may not parse: only the request matters here
        ECOM_CALLS[name](client)
    assert sent, f"{name} sent no request"
    assert _violations("ecom", sent) == []
    assert all(load_contract("ecom").route(r.method, r.url.path).documented for r in sent)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(RSERIES_CALLS))
def test_rseries_connector_requests_are_declared_by_the_contract(name: str) -> None:
    sent: list[httpx.Request] = []
    client = RSeriesClient(
        "https://api.lightspeedapp.com",
        InMemoryRateBudget(),
        account_id=None if name == "get_account_id" else "88000",
        token="token",
        transport=_recording_transport(sent),
    )
    with contextlib.suppress(Exception):  # an empty answer may not parse: only the request matters here
        RSERIES_CALLS[name](client)
    assert sent, f"{name} sent no request"
    assert _violations("rseries", sent) == []
    assert all(load_contract("rseries").route(r.method, r.url.path).documented for r in sent)  # type: ignore[union-attr]
