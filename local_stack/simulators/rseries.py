"""Lightspeed Retail R-Series (ex-MerchantOS) API V3 simulator: OAuth with rotating refresh tokens, the V3 envelope
quirks, cursor paging, query operators, the leaky-bucket rate limit. No webhooks: the vendor has none (KVH
`docs/endpoints/index.md`), every change is found by polling `timeStamp`.

Sources (see contracts/rseries.json, /work/shared/reference/rseries.md): KVH = koop-voor-hoop/lightspeed-retail-client
`docs/**` (a mirror of developers.lightspeedhq.com/retail), MKP = marketplacer/lightspeed_pos recorded cassettes (V2).
[I] marks a choice no source makes.

Routes (every one in contracts/rseries.json; `{a}` is the account id):
  POST /auth/oauth/token                    JSON, form or multipart; grant_type authorization_code | refresh_token
  GET  /API/V3/Account.json
  GET  /API/V3/Account/{a}/Shop.json, /Shop/{id}.json; Register; PriceLevel; PaymentType (GET list + single)
  GET/POST /API/V3/Account/{a}/Category.json; GET/PUT/DELETE .../Category/{id}.json       (writes cost 10)
  GET/POST .../Manufacturer.json; GET/PUT .../Manufacturer/{id}.json                        (no DELETE)
  GET/POST .../Item.json; GET/PUT/DELETE .../Item/{id}.json                  (DELETE = archive + zero stock)
  GET/POST .../ItemMatrix.json; GET/PUT/DELETE .../ItemMatrix/{id}.json
  GET .../ItemShop.json, .../ItemShop/{id}.json; PUT .../ItemShop/{id}.json (reorderPoint/reorderLevel only)
  GET .../Image.json, .../Image/{id}.json
  GET/POST .../Customer.json; GET/PUT/DELETE .../Customer/{id}.json         (DELETE = archive)
  GET/POST .../Sale.json; GET/PUT/DELETE .../Sale/{id}.json                 (writes cost 2, +3 completing)
  POST .../Sale/{id}/refund.json (10 drips); GET .../SaleLine.json, .../SaleLine/{id}.json (every sale's lines)

Envelope (KVH item.md, pagination.md, relations.md, tutorials/sales.md): every scalar is a string ("true", "4.39",
foreign key none = "0"); single answers `{"@attributes": {"count": "1"}, "Item": {...}}`; lists
`{"@attributes": {"next": url|"", "previous": url|""}, "Item": [...]}`; a relation with one row is an object, several
an array, none `""`; relations only when asked with `load_relations=["ItemShops"]` (or `all`), except in the write
answers where the vendor's samples show them (Item POST/PUT: ItemShops; Customer POST/PUT: Contact; Sale
POST/PUT: SaleLines, SalePayments). `Prices.ItemPrice` is always there on Item and ItemMatrix.
- A list page holding exactly one row gives that row as an OBJECT (MKP collection.rb `Array.wrap` implies it; no
  V3 sample shows it) [unverified]; `single_row_list_as_object=False` answers a one-element array instead.

Paging and queries (KVH pagination.md, query-parameters.md, each endpoint's "Sortable Fields"):
- `limit` 1..100 (default 100; above 100 is capped [I]); `sort=<field>` / `sort=-<field>` on the endpoint's sortable
  fields (else 400 naming the allowed ones); default sort the primary id ascending. The next/previous URLs carry
  every declared parameter of the request plus `sort`, `limit` and an opaque signed `after`/`before` cursor (sort
  value + id: equal timeStamps across a page edge are neither lost nor repeated); a crafted cursor is refused (400).
- Filters `field=<op>,<value>` with `=`, `>`, `>=`, `<`, `<=`, `><` (between, inclusive), `!=`, `~`/`!~` (like, `%`
  wildcard, case-insensitive [I]), `IN,[1,2]` - on the fields the contract declares per endpoint; undeclared
  parameters never reach a handler (the contract strips them: the whole list comes back).
- `timeStamp` values `YYYY-MM-DDTHH:MM:SS-00:00` (or +00:00 / -0400 ...); stored at second resolution, so several
  rows share a stamp (the seeded catalog makes groups of 4 on purpose).
- `archived=false` (default: live rows only) | `true` (both) | `only`. Customers: KVH customer.md says
  `?archive=1`, query-parameters.md `archived=true`; switch `customer_archive_param` ("archived" default,
  "archive", "both") says which one this account honours [unverified].
- `count=1` answers `{"@attributes": {"count": "N"}}`, costs 10 drips, refuses limit/sort/after/before (400).
- `categoryID` / `manufacturerID` on Item and ItemMatrix lists: declared from the field tables and the generic
  operator rule, no sample shows them [unverified]; switch `using_filters=False` ignores them (every row comes back).
- `Customer.json?load_relations=["Contact"]&Contact.email=<v>` filters on any ContactEmail address; without the
  Contact relation loaded the filter does nothing [I] (KVH relations.md: the relation "must be loaded").

OAuth (KVH authentication/refresh-token.md, authorization-code-grant.md):
- Access tokens live `expires_in` seconds (default 1800) on the simulator's clock. A refresh answers a new access +
  refresh pair; the refresh token it used stays valid until the NEW access token is first used, then is revoked.
  Refreshing again with it before that answers the SAME pending pair (KVH connect-with-postman.md: "a still-active
  access token may be returned") [I: one of the two behaviours the doc allows]. Unused refresh tokens expire after
  30 days. Expired/unknown access token: 401 `{"error": "access_denied", "error_description", "hint": "Access token
  could not be verified"}`; after `revoke_refresh_tokens()` (the merchant disconnects the app): hint "Access token has
  been revoked". Bad refresh token or code: 400 `invalid_grant`; missing field 400 `invalid_request`; bad client 401
  `invalid_client` (same body shape [I]).

Rate limit (KVH introduction/rate-limiting.md, endpoints/sale.md, category.md, pagination.md, relations.md):
- Leaky bucket per connection: size 90 + 10 per register beyond the first, drip 1/s + 0.5/s per extra register, on
  the clock. A request is allowed while the level is at or below the size, so the first one that overflows is
  allowed and the next ones get 429 (`X-LS-API-RateLimit-Type: api-leaky-bucket`, `Retry-After` whole seconds until
  the level is back at the size).
- Costs: 1; Sale POST/PUT/DELETE 2, +3 when the payload has `completed` true (the doc writes `complete`); Category
  writes 10; `count=1` 10; +0.5 per nested relation entity in a POST/PUT payload (each SaleLine, each ItemPrice...);
  load_relations +0.1 per to-one / +0.2 per to-many relation, doubled on list queries.
- Burst limiter: fixed 1-second windows of `burst_limit` requests (default 20, the doc's header example `1/20`
  [I]); 429 type `api-burst-limiter`, `Retry-After: 1`. `burst_limit=0` turns it off.
- Headers on every API answer: X-LS-Acct-Id, X-LS-Oauth-Client-Id, X-LS-Api-Bucket-Level ("12.5/90"),
  X-LS-API-Burst-Level ("3/20"), X-LS-Api-Drip-Rate, X-LS-Api-Request-Cost. The token route (another host,
  cloud.lightspeedapp.com) is not metered [I]. `rate_limit=False` keeps the headers and the drip accounting but
  never refuses (functional tests).

Stock and sales (KVH itemshop.md, item.md, sale.md, tutorials/sales.md, best-practices.md):
- Every item has one ItemShop per shop plus the shopID "0" summary row (sum of the shops); qoh may be negative,
  `sellable` is qoh floored at 0. A qoh change bumps the shop row's and the summary row's timeStamp, never the
  Item's ("doesn't include changes to related records"). ItemShop PUT changes reorderPoint/reorderLevel only; a `qoh`
  in it is ignored (switch `itemshop_qoh_put="refuse"` answers 400 instead) [unverified].
- Item PUT with `ItemShops.ItemShop[{itemShopID|shopID, qoh}]` sets stock directly (KVH tutorials/inventory-levels
  "Adjusting ItemShops Directly"). Item PUT `Prices.ItemPrice[{useTypeID|useType, amount}]` changes those levels
  only (switch `price_put_keeps_other_levels=False`: levels left out fall back to 0) [unverified]; a price change
  bumps Item.timeStamp [I]. `archived: "true"` on PUT is refused (KVH item.md: archive with DELETE) [I: 400];
  `archived: "false"` un-archives. DELETE archives and zeroes every shop's qoh.
- ItemMatrix PUT of description or Prices rewrites the variants' descriptions ("<matrix> <attr1> <attr2> <attr3>")
  and prices, bumping their timeStamps [I]; DELETE archives the matrix and its variants.
- Item PUT `ItemAttributes{itemAttributeSetID, attribute1..3}` of a variant item (KVH item.md PUT attributes; shape
  of tutorials/item-matrices.md POST) sets the attributes it names (left-out ones kept [I]) and re-stamps the item's
  description "<matrix> <attr1> <attr2> <attr3>" (KVH itemmatrix.md) unless the body sets one. Values another live
  variant of the matrix holds are refused (400) [unverified; switch `duplicate_attributes_refused=False` takes them].
- A Sale with `completed: true` must balance: payments equal the total, or exceed it with a cash payment (the excess
  becomes `change`, the payment is saved at the balance); else 400 and nothing is saved. Completing takes each line's
  unitQuantity off the ItemShop of the sale's shopID (non_inventory items excepted). A PUT may add lines/payments to
  an open sale, complete it, or set `voided: true` (a completed sale's stock comes back) [I]. Lines without unitPrice
  take the item's price at the shop's price level. Tax: `tax_rate` (default 0) on lines of taxable items [I].
- Refunds (KVH endpoints/sale-refund.md, saleline.md): `POST Sale/{id}/refund.json` (the id may be the ticketNumber)
  makes a new Sale whose lines copy the refunded lines (item, unit price, tax) with a negative unitQuantity and
  `parentSaleLineID`; no SaleLines = the whole sale, else each `{parentSaleLineID, unitQuantity}` (partial allowed).
  A line is never refunded past its quantity (400), `SalePayments` needs a paymentTypeID, an amount left out is the
  refund's total; `completed` defaults to true and, like any sale, completing puts the refunded items back in the
  refund's shop (its shopID, else the original's) [I]. Unverified (switches): whether the refund copies the
  original's referenceNumber/Source (`refund_copies_reference`, default no) and whether refunding bumps the
  original's updatetime (`refund_touches_original`, default no). Refund lines may also be POSTed on a Sale [I].
  `SaleLine.json` lists every sale's lines (no `archived`), filterable by saleLineID/saleID/itemID/parentSaleLineID.

Python API for tests (all under the state lock; each change stamps timeStamp with the clock's current second):
  RSeriesSimulator(*, account_id=88000, account_name="Demo Retail", client_id="rseries-demo",
      client_secret="rseries-secret", seed=0, narrate=None, faults=None, clock=time.time, shops=2, registers=1,
      online_price_level_id=3 | None, expires_in=1800, rate_limit=True, burst_limit=20,
      single_row_list_as_object=True, customer_archive_param="archived", itemshop_qoh_put="ignore",
      price_put_keeps_other_levels=True, tax_rate=0.0, refund_copies_reference=False, refund_touches_original=False,
      using_filters=True, duplicate_attributes_refused=True)
  .start()/.stop()/.url; .api_base (".../API/V3/Account/<id>"); .token_url
  tokens:  issue_tokens() -> {token_type, expires_in, access_token, refresh_token}; authorization_code() -> code;
           expire_access_tokens(); expire_refresh_tokens(); revoke_refresh_tokens(); refresh_grants, refused_grants
  catalog: seed_catalog(matrices=3, variants_per_matrix=4, simple_items=4, images=True, seed=0) -> summary dict
           (also the 70 000-variant benchmark: seed_catalog(7000, 10, 0, images=False) - compact slotted rows)
           add_item(...), add_matrix(...), add_customer(...), add_category(...), add_manufacturer(...),
           add_image(filename, item_id=0 | matrix_id=0, ordering=0) -> the Image row (12 per item or matrix)
           edit_category(id, name=, parent_id=), edit_manufacturer(id, name) (a rename stamps that row only);
           categories() / manufacturers() - rendered as the API renders them
  edits:   edit_item(item_id, **fields), archive_item(item_id), set_qoh(item_id, shop_id, qoh),
           set_price(item_id, price_level_id, amount), set_online_price(item_id, amount), edit_matrix(matrix_id,
           **fields), archive_matrix(matrix_id), create_sale(...) (a POS sale), void_sale(sale_id),
           refund_sale(sale_id, lines=None | [(saleLineID, quantity)], completed=True) (a refund at the till)
  reads:   item(item_id) / items() / matrix(id) / item_shops(item_id) / qoh(item_id, shop_id) / sales() /
           customers() / shops() / price_levels() / online_price_level_id - rendered as the API renders them
  rate:    bucket_level(), stats() (adds drips_used, throttled_bucket, throttled_burst, bucket_level)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local_stack.contract import ContractRoute
from local_stack.simulators.catalog import generate_family
from local_stack.simulators.common import (
    ApiError,
    Clock,
    Faults,
    Narrate,
    RateDecision,
    Request,
    Response,
    VendorSimulator,
)

TOKEN_PATH = "/auth/oauth/token"
API = "/API/V3/Account/{accountID}"
REFRESH_TOKEN_TTL_S = 30 * 86400  # KVH refresh-token.md: "Unused refresh tokens expire after 30 days"
MAX_LIMIT = 100  # KVH pagination.md
MAX_IMAGES_PER_ITEM = 12  # seed 000: per simple item, per variant item and per Matrix Master
HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
ACCESS_DENIED = "The resource owner or authorization server denied the request."
HINT_UNVERIFIED = "Access token could not be verified"
HINT_REVOKED = "Access token has been revoked"
SHOP_NAMES = ("Main Street", "Harbour Road", "Airport Kiosk", "Warehouse", "Pop-up Store", "Mall")
# KVH item.md / itemmatrix.md: "AttributeSets are 'Color/Size', 'Size', 'Color', '3 Attributes'"; ids from the
# samples (T-shirt: set 1 = colours + sizes; "Matrix Master": set 3 = colours only) [I for 2 and 4].
ATTRIBUTE_SETS = {1: ("Color", "Size"), 2: ("Size",), 3: ("Color",), 4: ("Attribute 1", "Attribute 2", "Attribute 3")}
# KVH paymenttype.md samples and introduction/defined-values.md (internal types).
PAYMENT_TYPES = (
    ("Cash", "cash"),
    ("Check", "user defined"),
    ("Credit Card", "credit card"),
    ("Credit Account", "credit account"),
    ("Gift Card", "gift card"),
)
EXTRA_PRICE_LEVELS = ("My Online Store", "Wholesale", "Staff", "VIP")  # fill ids below a high Online id
TICKET_BASE = 220000000000  # KVH sale.md samples: saleID 2 -> ticketNumber "220000000002"


# -- string rendering (every scalar is a string) ---------------------------------------------------------------------


def stamp(epoch: float) -> str:
    """`2021-03-30T19:38:07+00:00` (KVH samples), second resolution."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def num(value: float) -> str:
    """ "4.39", "100", "0" - as the samples print numbers."""
    text = f"{round(float(value), 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def flag(value: bool) -> str:
    return "true" if value else "false"


def relation(key: str, rows: list[dict[str, Any]]) -> Any:
    """KVH tutorials/sales.md, customer.md: one row -> object, several -> array, none -> ""."""
    if not rows:
        return ""
    return {key: rows[0] if len(rows) == 1 else rows}


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1")) or value == 1


def _rows_of(container: Any, key: str) -> list[dict[str, Any]]:
    """A relation in a request, sent either way (KVH tutorials/sales.md): {"SaleLine": {...}} or {"SaleLine": [...]}."""
    if container in (None, ""):
        return []
    if isinstance(container, list):
        inner: Any = container
    elif isinstance(container, dict):
        inner = container.get(key, [])
    else:
        raise ApiError(400, f"{key} must be an object or an array")
    if inner in (None, ""):
        return []
    rows: list[Any] = inner if isinstance(inner, list) else [inner]
    if not all(isinstance(row, dict) for row in rows):
        raise ApiError(400, f"every {key} must be an object")
    return rows


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"{name} must be a number") from exc


def _int(value: Any, name: str) -> int:
    number = _number(value, name)
    if number != int(number):
        raise ApiError(400, f"{name} must be an integer")
    return int(number)


def parse_time(value: str) -> int:
    """A query timeStamp: `YYYY-MM-DDTHH:MM:SS-00:00` (also `-0400`, `+00:00`; no offset = UTC [I])."""
    text = value.strip()
    if re.fullmatch(r".*[+-]\d{4}", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"Invalid date/time value {value!r}: expected YYYY-MM-DDTHH:MM:SS-00:00") from exc
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


# -- storage: compact rows for the big tables ------------------------------------------------------------------------


@dataclass(slots=True)
class ItemRow:
    id: int
    description: str
    custom_sku: str = ""
    manufacturer_sku: str = ""
    upc: str = ""
    ean: str = ""
    default_cost: float = 0.0
    tax: bool = True
    discountable: bool = True
    item_type: str = "default"
    publish_to_ecom: bool = True
    archived: bool = False
    category_id: int = 0
    manufacturer_id: int = 0
    matrix_id: int = 0
    attribute_set_id: int = 0
    attributes: tuple[str, str, str] = ("", "", "")
    prices: dict[int, float] = field(default_factory=dict)  # priceLevelID -> amount
    create_time: int = 0
    ts: int = 0


@dataclass(slots=True)
class ItemShopRow:
    id: int
    item_id: int
    shop_id: int
    qoh: int = 0
    reorder_point: int = 0
    reorder_level: int = 0
    ts: int = 0


@dataclass
class Resource:
    """One endpoint's table: how to read a field for filters/sorts, which relations exist, how it renders."""

    name: str  # "Item": the route segment and the envelope key
    id_field: str
    rows: dict[int, Any]
    sortable: tuple[str, ...]
    fields: dict[str, str]  # declared filter field -> kind: int | float | str | bool | time
    value: Callable[[Any, str], Any]
    render: Callable[[Any, frozenset[str]], dict[str, Any]]
    relations: dict[str, str] = field(default_factory=dict)  # relation -> "one" | "many"
    archivable: bool = False
    archived: Callable[[Any], bool] = lambda row: False
    version: int = 0
    _sorted: dict[str, tuple[int, list[tuple[Any, int]]]] = field(default_factory=dict)
    _grouped: dict[tuple[str, str], tuple[int, dict[Any, list[tuple[Any, int]]]]] = field(default_factory=dict)

    def touch(self) -> None:
        self.version += 1

    def order_where(self, sort_field: str, name: str, value: Any) -> list[tuple[Any, int]]:
        """The part of `order(sort_field)` whose rows have `name` == `value`, from an index cached until the table
        changes: a family read (`Item.json?itemMatrixID=`) costs a lookup, not a scan of 70 000 rows. The caller
        still applies every predicate, so the index only narrows where it looks."""
        cached = self._grouped.get((sort_field, name))
        if cached is None or cached[0] != self.version:
            groups: dict[Any, list[tuple[Any, int]]] = {}
            for key in self.order(sort_field):
                groups.setdefault(self.value(self.rows[key[1]], name), []).append(key)
            cached = (self.version, groups)
            self._grouped[(sort_field, name)] = cached
        return cached[1].get(value, [])

    def order(self, sort_field: str) -> list[tuple[Any, int]]:
        """(sort value, id) ascending, cached until the table changes (the 70 000-row catalog pages by bisect)."""
        cached = self._sorted.get(sort_field)
        if cached is None or cached[0] != self.version:
            keys = sorted((self.value(row, sort_field), row_id) for row_id, row in self.rows.items())
            cached = (self.version, keys)
            self._sorted[sort_field] = cached
        return cached[1]


# -- query operators -------------------------------------------------------------------------------------------------

OPERATORS = ("><", ">=", "<=", "!=", "!~", ">", "<", "~", "=", "IN")
PAGING_PARAMS = frozenset({"limit", "sort", "after", "before", "count", "load_relations", "archived", "archive"})


def _coerce(kind: str, raw: str, name: str) -> Any:
    raw = raw.strip()
    if kind == "time":
        return parse_time(raw)
    if kind == "int":
        return _int(raw, name)
    if kind == "float":
        return _number(raw, name)
    if kind == "bool":
        return raw.lower() in ("true", "1")
    return raw


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$", re.IGNORECASE | re.DOTALL)


def compile_filter(name: str, kind: str, raw: str) -> Callable[[Any], bool]:
    """`field=<op>,<value>` (KVH query-parameters.md "Query Operators") -> a predicate on the field's value(s)."""
    op, rest = "=", raw
    for candidate in OPERATORS:
        if raw.startswith(candidate + ","):
            op, rest = candidate, raw[len(candidate) + 1 :]
            break
    if op == "IN":
        text = rest.strip()
        values = json.loads(text) if text.startswith("[") and _valid_json(text) else text.strip("[]").split(",")
        if len(values) > 100:
            raise ApiError(400, f"IN on {name} takes at most 100 values")
        wanted = {_coerce(kind, str(v), name) for v in values}
        return lambda v: v in wanted
    if op == "><":
        low_raw, _, high_raw = rest.partition(",")
        low, high = _coerce(kind, low_raw, name), _coerce(kind, high_raw, name)
        return lambda v: low <= v <= high
    if op in ("~", "!~"):
        regex = _like(rest)
        return (lambda v: bool(regex.match(str(v)))) if op == "~" else (lambda v: not regex.match(str(v)))
    operand = _coerce(kind, rest, name)
    compare: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: v == operand,
        "!=": lambda v: v != operand,
        ">": lambda v: v > operand,
        ">=": lambda v: v >= operand,
        "<": lambda v: v < operand,
        "<=": lambda v: v <= operand,
    }
    return compare[op]


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# -- OAuth -----------------------------------------------------------------------------------------------------------


@dataclass
class _Access:
    expires_at: float
    parent_refresh: str | None
    used: bool = False


@dataclass
class _Refresh:
    issued_at: float
    child: tuple[str, str] | None = None  # the pair a refresh with this token answered (until that access is used)


class RSeriesOAuth:
    """Tokens of the one app connected to the simulated account (KVH authentication/*)."""

    def __init__(self, clock: Clock, rng: random.Random, expires_in: int) -> None:
        self.clock = clock
        self.rng = rng
        self.expires_in = expires_in
        self.access: dict[str, _Access] = {}
        self.refresh: dict[str, _Refresh] = {}
        self.codes: set[str] = set()
        self.revoked_access: set[str] = set()
        self.refresh_grants = 0
        self.refused_grants = 0

    def _token(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice("0123456789abcdef") for _ in range(40))

    def issue(self, parent_refresh: str | None = None) -> dict[str, Any]:
        access, refresh = self._token("eyJ0e"), self._token("def50")
        now = self.clock()
        self.access[access] = _Access(now + self.expires_in, parent_refresh)
        self.refresh[refresh] = _Refresh(now)
        if parent_refresh is not None:
            self.refresh[parent_refresh].child = (access, refresh)
        return {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": access, "refresh_token": refresh}

    def check(self, token: str) -> str | None:
        """None when the access token is good (and its first use revokes the refresh token it came from); else the
        401 hint."""
        entry = self.access.get(token)
        if entry is None:
            return HINT_REVOKED if token in self.revoked_access else HINT_UNVERIFIED
        if entry.expires_at <= self.clock():
            return HINT_UNVERIFIED
        if not entry.used:
            entry.used = True
            if entry.parent_refresh is not None:
                self.refresh.pop(entry.parent_refresh, None)
        return None

    def grant(self, body: Mapping[str, Any], client_id: str, client_secret: str) -> Response:
        grant_type = str(body.get("grant_type") or "")
        if grant_type not in ("authorization_code", "refresh_token"):
            return self._error(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        needed = "code" if grant_type == "authorization_code" else "refresh_token"
        if not body.get("client_id") or not body.get(needed):
            return self._error(400, "invalid_request", f"Check the `{needed}` parameter")
        secret = body.get("client_secret")
        if str(body["client_id"]) != client_id or (secret not in (None, "") and str(secret) != client_secret):
            self.refused_grants += 1
            return self._error(401, "invalid_client", "Client authentication failed")
        if grant_type == "authorization_code":
            if str(body["code"]) not in self.codes:
                self.refused_grants += 1
                return self._error(400, "invalid_grant", "Authorization code is invalid or expired")
            self.codes.discard(str(body["code"]))
            return Response(200, self.issue())
        token = str(body["refresh_token"])
        entry = self.refresh.get(token)
        if entry is None or (entry.child is None and entry.issued_at + REFRESH_TOKEN_TTL_S <= self.clock()):
            self.refused_grants += 1
            return self._error(400, "invalid_grant", "Token has been revoked")
        self.refresh_grants += 1
        if entry.child is not None:  # refreshed before and the new access token not used yet: the same pair again
            access, refresh = entry.child
            pending = self.access.get(access)
            if pending is not None and pending.expires_at > self.clock():
                left = int(pending.expires_at - self.clock())
                return Response(
                    200, {"token_type": "Bearer", "expires_in": left, "access_token": access, "refresh_token": refresh}
                )
        return Response(200, self.issue(token))

    @staticmethod
    def _error(status: int, error: str, hint: str) -> Response:
        descriptions = {
            "invalid_request": "The request is missing a required parameter, includes an invalid parameter value, "
            "includes a parameter more than once, or is otherwise malformed.",
            "invalid_client": "Client authentication failed",
            "invalid_grant": "The provided authorization grant (e.g., authorization code, resource owner credentials) "
            "or refresh token is invalid, expired, revoked, does not match the redirection URI used in the "
            "authorization request, or was issued to another client.",
            "unsupported_grant_type": "The authorization grant type is not supported by the authorization server.",
        }
        return Response(status, {"error": error, "error_description": descriptions[error], "hint": hint})


# -- the simulator ---------------------------------------------------------------------------------------------------


class RSeriesSimulator(VendorSimulator):
    vendor = "rseries"
    contract_api = "rseries"

    def __init__(
        self,
        *,
        account_id: int = 88000,
        account_name: str = "Demo Retail",
        client_id: str = "rseries-demo",
        client_secret: str = "rseries-secret",  # noqa: S107 - a simulator's demo app
        seed: int = 0,
        narrate: Narrate | None = None,
        faults: Faults | None = None,
        clock: Clock = time.time,
        shops: int = 2,
        registers: int = 1,
        online_price_level_id: int | None = 3,
        expires_in: int = 1800,
        rate_limit: bool = True,
        burst_limit: int = 20,
        single_row_list_as_object: bool = True,
        customer_archive_param: str = "archived",
        itemshop_qoh_put: str = "ignore",
        price_put_keeps_other_levels: bool = True,
        tax_rate: float = 0.0,
        refund_copies_reference: bool = False,
        refund_touches_original: bool = False,
        using_filters: bool = True,
        duplicate_attributes_refused: bool = True,
    ) -> None:
        super().__init__(seed=seed, narrate=narrate, faults=faults, clock=clock)
        if customer_archive_param not in ("archived", "archive", "both"):
            raise ValueError("customer_archive_param: archived | archive | both")
        if itemshop_qoh_put not in ("ignore", "refuse"):
            raise ValueError("itemshop_qoh_put: ignore | refuse")
        self.account_id = account_id
        self.account_name = account_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.single_row_list_as_object = single_row_list_as_object
        self.customer_archive_param = customer_archive_param
        self.itemshop_qoh_put = itemshop_qoh_put
        self.price_put_keeps_other_levels = price_put_keeps_other_levels
        self.tax_rate = tax_rate
        self.refund_copies_reference = refund_copies_reference
        self.refund_touches_original = refund_touches_original
        self.using_filters = using_filters
        self.duplicate_attributes_refused = duplicate_attributes_refused
        self.oauth = RSeriesOAuth(clock, random.Random(f"{seed}:oauth"), expires_in)
        self._cursor_key = hashlib.sha256(f"rseries-cursor:{seed}:{account_id}".encode()).digest()
        self._local = threading.local()
        # Leaky bucket (KVH rate-limiting.md), one connection: this account x this client.
        self.rate_limit = rate_limit
        self.registers = registers
        self.bucket_size = 90.0 + 10.0 * (registers - 1)
        self.drip_rate = 1.0 + 0.5 * (registers - 1)
        self.burst_limit = burst_limit
        self._level = 0.0
        self._level_at = clock()
        self._burst_window = -1
        self._burst_count = 0
        self.drips_used = 0.0
        self.throttled_bucket = 0
        self.throttled_burst = 0
        self._next_id: dict[str, int] = {}
        self._item_shops_by_item: dict[int, list[ItemShopRow]] = {}
        self.online_price_level_id = online_price_level_id
        self._build_resources()
        self._seed_account(shops, max(shops, registers), online_price_level_id)
        self._add_routes()

    # -- ids, time ---------------------------------------------------------------------------------------------------

    def _id(self, table: str) -> int:
        self._next_id[table] = self._next_id.get(table, 0) + 1
        return self._next_id[table]

    def _now(self) -> int:
        return int(self.clock())

    @property
    def api_base(self) -> str:
        return f"{self.url}/API/V3/Account/{self.account_id}"

    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    # -- resources ---------------------------------------------------------------------------------------------------

    def _build_resources(self) -> None:
        r: dict[str, Resource] = {}
        get = _getter
        r["Shop"] = Resource(
            "Shop",
            "shopID",
            {},
            ("shopID",),
            {"shopID": "int", "name": "str", "timeStamp": "time"},
            get({"shopID": "id", "name": "name", "timeStamp": "ts"}),
            self._render_shop,
            {"Registers": "many"},
            True,
            lambda row: row["archived"],
        )
        r["Register"] = Resource(
            "Register",
            "registerID",
            {},
            ("registerID",),
            {"registerID": "int", "shopID": "int", "name": "str"},
            get({"registerID": "id", "shopID": "shop_id", "name": "name"}),
            self._render_register,
            {},
            True,
            lambda row: row["archived"],
        )
        r["PriceLevel"] = Resource(
            "PriceLevel",
            "priceLevelID",
            {},
            ("priceLevelID", "name"),
            {"priceLevelID": "int", "name": "str"},
            get({"priceLevelID": "id", "name": "name"}),
            self._render_price_level,
            {},
            True,
            lambda row: row["archived"],
        )
        r["PaymentType"] = Resource(
            "PaymentType",
            "paymentTypeID",
            {},
            ("paymentTypeID",),
            {"paymentTypeID": "int", "name": "str", "type": "str"},
            get({"paymentTypeID": "id", "name": "name", "type": "type"}),
            self._render_payment_type,
            {},
            True,
            lambda row: row["archived"],
        )
        r["Category"] = Resource(
            "Category",
            "categoryID",
            {},
            ("categoryID", "timeStamp", "leftNode", "rightNode"),
            {"categoryID": "int", "name": "str", "parentID": "int", "fullPathName": "str", "timeStamp": "time"},
            self._category_value,
            self._render_category,
        )
        r["Manufacturer"] = Resource(
            "Manufacturer",
            "manufacturerID",
            {},
            ("manufacturerID", "timeStamp", "name"),
            {"manufacturerID": "int", "name": "str", "timeStamp": "time"},
            get({"manufacturerID": "id", "name": "name", "timeStamp": "ts"}),
            self._render_manufacturer,
        )
        r["Item"] = Resource(
            "Item",
            "itemID",
            {},
            ("itemID", "timeStamp", "description"),
            dict(ITEM_FILTERS),
            _item_value,
            self._render_item,
            {"ItemShops": "many", "ItemAttributes": "one", "Images": "many", "Category": "one", "Manufacturer": "one"},
            True,
            lambda row: row.archived,
        )
        r["ItemMatrix"] = Resource(
            "ItemMatrix",
            "itemMatrixID",
            {},
            ("itemMatrixID", "timeStamp", "description"),
            {
                "itemMatrixID": "int",
                "description": "str",
                "itemAttributeSetID": "int",
                "categoryID": "int",
                "manufacturerID": "int",
                "timeStamp": "time",
            },
            get(
                {
                    "itemMatrixID": "id",
                    "description": "description",
                    "itemAttributeSetID": "attribute_set_id",
                    "categoryID": "category_id",
                    "manufacturerID": "manufacturer_id",
                    "timeStamp": "ts",
                }
            ),
            self._render_matrix,
            {"Items": "many", "Images": "many", "Category": "one", "Manufacturer": "one"},
            True,
            lambda row: row["archived"],
        )
        r["ItemShop"] = Resource(
            "ItemShop",
            "itemShopID",
            {},
            ("itemShopID", "timeStamp"),
            {"itemShopID": "int", "itemID": "int", "shopID": "int", "qoh": "int", "timeStamp": "time"},
            _item_shop_value,
            self._render_item_shop,
        )
        r["Image"] = Resource(
            "Image",
            "imageID",
            {},
            ("imageID",),
            {"imageID": "int", "itemID": "int", "itemMatrixID": "int"},
            get({"imageID": "id", "itemID": "item_id", "itemMatrixID": "matrix_id"}),
            self._render_image,
        )
        r["Customer"] = Resource(
            "Customer",
            "customerID",
            {},
            ("customerID", "timeStamp", "firstName", "lastName"),
            {"customerID": "int", "firstName": "str", "lastName": "str", "company": "str", "timeStamp": "time"},
            get(
                {
                    "customerID": "id",
                    "firstName": "first_name",
                    "lastName": "last_name",
                    "company": "company",
                    "timeStamp": "ts",
                }
            ),
            self._render_customer,
            {"Contact": "one"},
            True,
            lambda row: row["archived"],
        )
        r["Sale"] = Resource(
            "Sale",
            "saleID",
            {},
            ("saleID", "timeStamp", "completeTime", "updatetime"),
            dict(SALE_FILTERS),
            _sale_value,
            self._render_sale,
            {"SaleLines": "many", "SalePayments": "many", "Customer": "one"},
            True,
            lambda row: row["archived"],
        )
        # Every sale's lines (KVH saleline.md; no `archived` field): rows {"sale_id", "line"}, the line as stored.
        r["SaleLine"] = Resource(
            "SaleLine",
            "saleLineID",
            {},
            ("saleLineID", "timeStamp", "saleID"),
            dict(SALE_LINE_FILTERS),
            _sale_line_value,
            lambda row, relations: self._render_line(self.resources["Sale"].rows[row["sale_id"]], row["line"]),
        )
        self.resources = r

    # -- seeding -----------------------------------------------------------------------------------------------------

    def _seed_account(self, shops: int, registers: int, online_id: int | None) -> None:
        now = self._now()
        levels = [(1, "Default"), (2, "MSRP")]
        if online_id is not None:
            if online_id < 3:
                raise ValueError("online_price_level_id must be >= 3 (1 = Default, 2 = MSRP)")
            levels += [(n, EXTRA_PRICE_LEVELS[(n - 3) % len(EXTRA_PRICE_LEVELS)]) for n in range(3, online_id)]
            levels.append((online_id, "Online"))
        for level_id, name in levels:
            self.resources["PriceLevel"].rows[level_id] = {
                "id": level_id,
                "name": name,
                "archived": False,
                "can_be_archived": level_id > 2,
                "ts": now,
            }
        self._next_id["PriceLevel"] = max(level_id for level_id, _ in levels)
        for n in range(shops):
            shop_id = self._id("Shop")
            suffix = f" {n // len(SHOP_NAMES) + 1}" if n >= len(SHOP_NAMES) else ""
            self.resources["Shop"].rows[shop_id] = {
                "id": shop_id,
                "name": SHOP_NAMES[n % len(SHOP_NAMES)] + suffix,
                "archived": False,
                "price_level_id": 1,
                "time_zone": "America/Toronto",
                "ts": now,
            }
        shop_ids = sorted(self.resources["Shop"].rows)
        for n in range(registers):
            register_id = self._id("Register")
            self.resources["Register"].rows[register_id] = {
                "id": register_id,
                "name": f"Register {n + 1}",
                "shop_id": shop_ids[n % len(shop_ids)],
                "archived": False,
                "open_time": now,
            }
        for name, kind in PAYMENT_TYPES:
            type_id = self._id("PaymentType")
            self.resources["PaymentType"].rows[type_id] = {
                "id": type_id,
                "name": name,
                "type": kind,
                "archived": False,
                "internal": True,
            }
        for resource in self.resources.values():
            resource.touch()

    def seed_catalog(
        self,
        matrices: int = 3,
        variants_per_matrix: int = 4,
        simple_items: int = 4,
        seed: int = 0,
        *,
        images: bool = True,
        customers: int = 3,
    ) -> dict[str, int]:
        """A demo catalog: categories, manufacturers, `matrices` matrices of `variants_per_matrix` variants (Color/Size)
        and `simple_items` simple items, stock in every shop (a few negative), an Online price where the account has
        the level, images (one per item and matrix) and customers. Deterministic in `seed`. timeStamps go back from
        the clock's current second, four rows per second, so equal stamps straddle page edges. Compact: the
        benchmark's 7 000 x 10 variants take a few seconds and well under a gigabyte."""
        rng = random.Random(f"rseries-catalog:{seed}")
        with self.lock:
            categories = [self.add_category(name) for name in ("Tops", "Bottoms", "Accessories")]
            categories.append(self.add_category("Outerwear", parent_id=categories[0]))
            makers = [self.add_manufacturer(name) for name in ("Dockside", "Northwind", "Tidewater")]
            total_rows = matrices * (variants_per_matrix + 1) + simple_items
            base = self._now() - total_rows // 4 - 1
            tick = iter(range(total_rows + 10))

            def ts() -> int:
                return base + next(tick) // 4

            item_shops_before = self._next_id.get("ItemShop", 0)
            start = self._next_id.get("ItemMatrix", 0) + self._next_id.get("Item", 0)
            for index in range(matrices):
                spec = generate_family(start + index, variants_per_matrix, rng)
                price = spec.variants[0].price_incl
                matrix_id = self._new_matrix(
                    spec.name, 1, price, rng.choice(categories), rng.choice(makers), ts(), default_cost=price * 0.4
                )
                for variant in spec.variants:
                    values = [value for _, value in variant.options] + ["", "", ""]
                    attrs = (values[0], values[1], values[2])
                    self._new_item(
                        description="",
                        custom_sku=variant.sku,
                        ean=variant.ean,
                        price=variant.price_incl,
                        category_id=self.resources["ItemMatrix"].rows[matrix_id]["category_id"],
                        manufacturer_id=self.resources["ItemMatrix"].rows[matrix_id]["manufacturer_id"],
                        matrix_id=matrix_id,
                        attributes=attrs,
                        ts=ts(),
                        rng=rng,
                        default_cost=variant.supply_price,
                    )
                if images:
                    self._new_image(0, matrix_id, f"{spec.handle}.jpg", 0)
            for index in range(simple_items):
                spec = generate_family(start + matrices + index, 0, rng)
                variant = spec.variants[0]
                item_id = self._new_item(
                    description=spec.name,
                    custom_sku=variant.sku,
                    ean=variant.ean,
                    price=variant.price_incl,
                    category_id=rng.choice(categories),
                    manufacturer_id=rng.choice(makers),
                    ts=ts(),
                    rng=rng,
                    default_cost=variant.supply_price,
                )
                if images:
                    self._new_image(item_id, 0, f"{spec.handle}.jpg", 0)
            for n in range(customers):
                first, last = ("Ada", "Grace", "Alan", "Edsger", "Barbara")[n % 5], f"Customer{n + 1}"
                self.add_customer(first, last, email=f"{first.lower()}.{last.lower()}@example.com")
            for resource in self.resources.values():
                resource.touch()
        summary = {
            "matrices": matrices,
            "variants": matrices * variants_per_matrix,
            "simple_items": simple_items,
            "item_shops": self._next_id.get("ItemShop", 0) - item_shops_before,
        }
        self.narrate(f"R-Series: seeded {summary}")
        return summary

    def _new_matrix(
        self,
        description: str,
        attribute_set_id: int,
        price: float,
        category_id: int,
        manufacturer_id: int,
        ts: int,
        *,
        default_cost: float = 0.0,
        online_price: float | None = None,
    ) -> int:
        matrix_id = self._id("ItemMatrix")
        self.resources["ItemMatrix"].rows[matrix_id] = {
            "id": matrix_id,
            "description": description,
            "attribute_set_id": attribute_set_id,
            "category_id": category_id,
            "manufacturer_id": manufacturer_id,
            "archived": False,
            "tax": True,
            "item_type": "default",
            "default_cost": default_cost,
            "prices": self._default_prices(price, online_price),
            "ts": ts,
        }
        return matrix_id

    def _default_prices(self, price: float, online: float | None = None) -> dict[int, float]:
        prices = {1: price, 2: 0.0}
        if self.online_price_level_id is not None:
            prices[self.online_price_level_id] = price if online is None else online
        return prices

    def _new_item(
        self,
        *,
        description: str,
        price: float,
        ts: int,
        rng: random.Random | None = None,
        custom_sku: str = "",
        ean: str = "",
        upc: str = "",
        category_id: int = 0,
        manufacturer_id: int = 0,
        matrix_id: int = 0,
        attributes: tuple[str, str, str] = ("", "", ""),
        default_cost: float = 0.0,
        item_type: str = "default",
        online_price: float | None = None,
        qoh: Mapping[int, int] | None = None,
        tax: bool = True,
    ) -> int:
        item_id = self._id("Item")
        matrix = self.resources["ItemMatrix"].rows.get(matrix_id) if matrix_id else None
        row = ItemRow(
            id=item_id,
            description=description,
            custom_sku=custom_sku,
            upc=upc,
            ean=ean,
            default_cost=default_cost,
            tax=tax,
            item_type=item_type,
            category_id=category_id,
            manufacturer_id=manufacturer_id,
            matrix_id=matrix_id,
            attribute_set_id=matrix["attribute_set_id"] if matrix else 0,
            attributes=attributes,
            prices=self._default_prices(price, online_price),
            create_time=ts,
            ts=ts,
        )
        if matrix is not None:
            row.description = _variant_description(matrix["description"], attributes)
        self.resources["Item"].rows[item_id] = row
        shop_rows = [ItemShopRow(self._id("ItemShop"), item_id, 0, ts=ts)]
        for shop_id in sorted(self.resources["Shop"].rows):
            level = (qoh or {}).get(shop_id)
            if level is None:
                level = (
                    rng.randint(-2, 20)
                    if rng is not None and rng.random() < 0.1
                    else (rng.randint(0, 20) if rng else 0)
                )
            shop_rows.append(ItemShopRow(self._id("ItemShop"), item_id, shop_id, level, ts=ts))
        shop_rows[0].qoh = sum(r.qoh for r in shop_rows[1:])
        self._item_shops_by_item[item_id] = shop_rows
        for shop_row in shop_rows:
            self.resources["ItemShop"].rows[shop_row.id] = shop_row
        return item_id

    def _new_image(self, item_id: int, matrix_id: int, filename: str, ordering: int) -> int:
        image_id = self._id("Image")
        public_id = hashlib.sha256(f"{self.account_id}:{image_id}".encode()).hexdigest()[:20]
        self.resources["Image"].rows[image_id] = {
            "id": image_id,
            "item_id": item_id,
            "matrix_id": matrix_id,
            "filename": filename,
            "description": "",
            "ordering": ordering,
            "public_id": public_id,
            "size": 120_000 + image_id,
            "create": self._now(),
            "ts": self._now(),
        }
        return image_id

    # -- test-driving helpers (what a POS user does) -----------------------------------------------------------------

    def issue_tokens(self) -> dict[str, Any]:
        """The first token answer of an authorization-code grant (the merchant authorised the app)."""
        with self.lock:
            return self.oauth.issue()

    def authorization_code(self) -> str:
        """What the consent redirect hands the app (`?code=`), for `POST /auth/oauth/token` grant_type
        authorization_code."""
        with self.lock:
            code = self.oauth._token("code")
            self.oauth.codes.add(code)
            return code

    def expire_access_tokens(self) -> int:
        """Every access token issued so far expires now (as `expires_in` passing would)."""
        with self.lock:
            for entry in self.oauth.access.values():
                entry.expires_at = min(entry.expires_at, self.clock())
            return len(self.oauth.access)

    def expire_refresh_tokens(self) -> None:
        """30 days pass without a refresh: every unused refresh token has expired."""
        with self.lock:
            for entry in self.oauth.refresh.values():
                entry.issued_at -= REFRESH_TOKEN_TTL_S
                entry.child = None

    def revoke_refresh_tokens(self) -> None:
        """The merchant removes the app: refresh and access tokens stop working (hint "... has been revoked")."""
        with self.lock:
            self.oauth.revoked_access.update(self.oauth.access)
            self.oauth.access.clear()
            self.oauth.refresh.clear()
        self.narrate("R-Series: the merchant revoked the app's access")

    @property
    def refresh_grants(self) -> int:
        return self.oauth.refresh_grants

    @property
    def refused_grants(self) -> int:
        return self.oauth.refused_grants

    def add_category(self, name: str, parent_id: int = 0) -> int:
        with self.lock:
            category_id = self._id("Category")
            now = self._now()
            self.resources["Category"].rows[category_id] = {
                "id": category_id,
                "name": name,
                "parent_id": parent_id,
                "create": now,
                "ts": now,
            }
            self._renumber_categories()
            return category_id

    def add_manufacturer(self, name: str) -> int:
        with self.lock:
            maker_id = self._id("Manufacturer")
            now = self._now()
            self.resources["Manufacturer"].rows[maker_id] = {"id": maker_id, "name": name, "create": now, "ts": now}
            self.resources["Manufacturer"].touch()
            return maker_id

    def edit_category(self, category_id: int, *, name: str | None = None, parent_id: int | None = None) -> None:
        """A POS user renames or moves a category (as `PUT Category/{id}`): its own timeStamp moves; the items in it
        keep theirs (KVH item.md: timeStamp "doesn't include changes to related records"), and so do the categories
        below it whose fullPathName changes [I]."""
        with self.lock:
            row = self._get("Category", category_id)
            if parent_id is not None:
                if parent_id == category_id or (parent_id and parent_id not in self.resources["Category"].rows):
                    raise ValueError(f"no parent category {parent_id} for {category_id}")
                row["parent_id"] = parent_id
            if name is not None:
                row["name"] = name
            row["ts"] = self._now()
            self._renumber_categories()
        self.narrate(f"R-Series: category {category_id} edited")

    def edit_manufacturer(self, maker_id: int, name: str) -> None:
        """A POS user renames a manufacturer (as `PUT Manufacturer/{id}`); the items keep their timeStamp."""
        with self.lock:
            row = self._get("Manufacturer", maker_id)
            row["name"], row["ts"] = name, self._now()
            self._touch("Manufacturer")
        self.narrate(f"R-Series: manufacturer {maker_id} renamed {name!r}")

    def categories(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.resources["Category"].rows
            return [self._render_category(rows[key], frozenset()) for key in sorted(rows)]

    def manufacturers(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.resources["Manufacturer"].rows
            return [self._render_manufacturer(rows[key], frozenset()) for key in sorted(rows)]

    def add_item(
        self,
        description: str,
        price: float,
        *,
        custom_sku: str = "",
        ean: str = "",
        upc: str = "",
        qoh: Mapping[int, int] | None = None,
        online_price: float | None = None,
        category_id: int = 0,
        manufacturer_id: int = 0,
        item_type: str = "default",
    ) -> int:
        """A simple item created in the POS (stock per shop id, 0 elsewhere)."""
        with self.lock:
            item_id = self._new_item(
                description=description,
                price=price,
                ts=self._now(),
                custom_sku=custom_sku,
                ean=ean,
                upc=upc,
                qoh=qoh or {},
                online_price=online_price,
                category_id=category_id,
                manufacturer_id=manufacturer_id,
                item_type=item_type,
            )
            self._touch("Item", "ItemShop")
        self.narrate(f"R-Series: item {item_id} {description!r} created")
        return item_id

    def add_matrix(
        self,
        description: str,
        price: float,
        variants: Iterable[tuple[str, ...]],
        *,
        attribute_set_id: int = 1,
        qoh: Mapping[int, int] | None = None,
        online_price: float | None = None,
    ) -> tuple[int, list[int]]:
        """A matrix and its variant items (attribute values per variant); returns (matrix id, item ids)."""
        with self.lock:
            now = self._now()
            matrix_id = self._new_matrix(description, attribute_set_id, price, 0, 0, now, online_price=online_price)
            item_ids = []
            for n, values in enumerate(variants):
                attrs = (*values, "", "", "")[:3]
                item_ids.append(
                    self._new_item(
                        description="",
                        price=price,
                        ts=now,
                        matrix_id=matrix_id,
                        attributes=attrs,  # type: ignore[arg-type]
                        custom_sku=f"M{matrix_id}-{n + 1}",
                        qoh=qoh or {},
                        online_price=online_price,
                    )
                )
            self._touch("ItemMatrix", "Item", "ItemShop")
        self.narrate(f"R-Series: matrix {matrix_id} {description!r} with {len(item_ids)} variants created")
        return matrix_id, item_ids

    def add_customer(self, first_name: str, last_name: str, *, email: str | None = None, company: str = "") -> int:
        with self.lock:
            customer_id = self._id("Customer")
            now = self._now()
            self.resources["Customer"].rows[customer_id] = {
                "id": customer_id,
                "first_name": first_name,
                "last_name": last_name,
                "company": company,
                "title": "",
                "archived": False,
                "create": now,
                "ts": now,
                "emails": [(email, "Primary")] if email else [],
                "phones": [],
                "addresses": [],
                "no_email": False,
                "no_phone": False,
                "no_mail": False,
                "contact_id": customer_id,
            }
            self.resources["Customer"].touch()
            return customer_id

    def edit_item(self, item_id: int, **fields: Any) -> dict[str, Any]:
        """A POS user edits an item: API field names (description, customSku, upc, ean, categoryID,
        manufacturerID, defaultCost, tax, publishToEcom, itemType; a variant's ItemAttributes)."""
        with self.lock:
            row = self._item(item_id)
            if "ItemAttributes" in fields and row.matrix_id:
                self._put_attributes(row, fields.pop("ItemAttributes"))
            self._apply_item_fields(row, {k: str(v) if not isinstance(v, str) else v for k, v in fields.items()})
            row.ts = self._now()
            self._touch("Item")
            self.narrate(f"R-Series: item {item_id} edited ({', '.join(sorted(fields))})")
            return self._render_item(row, frozenset())

    def archive_item(self, item_id: int) -> None:
        with self.lock:
            self._archive_item(self._item(item_id))
        self.narrate(f"R-Series: item {item_id} archived (stock zeroed)")

    def set_qoh(self, item_id: int, shop_id: int, qoh: int) -> None:
        with self.lock:
            self._set_qoh(item_id, shop_id, qoh)
        self.narrate(f"R-Series: item {item_id} stock at shop {shop_id} set to {qoh}")

    def set_price(self, item_id: int, price_level_id: int, amount: float) -> None:
        with self.lock:
            if price_level_id not in self.resources["PriceLevel"].rows:
                raise KeyError(f"no price level {price_level_id}")
            row = self._item(item_id)
            row.prices[price_level_id] = float(amount)
            row.ts = self._now()
            self._touch("Item")
        self.narrate(f"R-Series: item {item_id} price level {price_level_id} = {amount}")

    def set_online_price(self, item_id: int, amount: float) -> None:
        if self.online_price_level_id is None:
            raise KeyError("this account has no Online price level")
        self.set_price(item_id, self.online_price_level_id, amount)

    def edit_matrix(self, matrix_id: int, **fields: Any) -> None:
        """description / Prices-free edits to a matrix (API field names); variants follow ([I])."""
        with self.lock:
            matrix = self._get("ItemMatrix", matrix_id)
            self._apply_matrix_body(matrix, {k: str(v) for k, v in fields.items()})
        self.narrate(f"R-Series: matrix {matrix_id} edited ({', '.join(sorted(fields))})")

    def archive_matrix(self, matrix_id: int) -> None:
        with self.lock:
            self._archive_matrix(self._get("ItemMatrix", matrix_id))
        self.narrate(f"R-Series: matrix {matrix_id} archived with its variants")

    def add_image(self, filename: str, *, item_id: int = 0, matrix_id: int = 0, ordering: int = 0) -> dict[str, Any]:
        """A POS user uploads an image to an item or to a Matrix Master (KVH item-image.md, itemmatrix-image.md:
        `ordering` starts at 0); returns the Image row as the API renders it. Seed 000: "A simple product in your
        Retail POS can have 12 images", a matrix "12 images assigned to each variant, and 12 images assigned to the
        Matrix Master": a 13th is refused (ValueError). The upload leaves the Item's timeStamp alone [I: KVH item.md
        "timeStamp ... doesn't include changes to related records"], so a poller sees it with the item's next change."""
        if bool(item_id) == bool(matrix_id):
            raise ValueError("an image belongs to one item or one matrix (KVH image.md: itemID or itemMatrixID)")
        with self.lock:
            if item_id:
                self._item(item_id)
            else:
                self._get("ItemMatrix", matrix_id)
            if len(self._images(item_id=item_id, matrix_id=matrix_id)) >= MAX_IMAGES_PER_ITEM:
                raise ValueError(f"seed 000: at most {MAX_IMAGES_PER_ITEM} images per item and per Matrix Master")
            image_id = self._new_image(item_id, matrix_id, filename, ordering)
            self._touch("Image")
            return self._render_image(self.resources["Image"].rows[image_id], frozenset())

    def create_sale(
        self,
        lines: Iterable[tuple[int, int]],
        *,
        shop_id: int = 1,
        payment_type_id: int = 1,
        reference_number: str = "",
        reference_number_source: str = "",
    ) -> dict[str, Any]:
        """A completed register sale of (item id, quantity) lines, paid in full: takes stock at `shop_id`."""
        body = {
            "shopID": str(shop_id),
            "registerID": str(self._register_of(shop_id)),
            "employeeID": "1",
            "completed": "true",
            "referenceNumber": reference_number,
            "referenceNumberSource": reference_number_source,
            "SaleLines": {"SaleLine": [{"itemID": str(i), "unitQuantity": str(q)} for i, q in lines]},
        }
        with self.lock:
            draft = self._sale_from_body(body, None)
            total = self._totals(draft)["total"]
            body["SalePayments"] = {"SalePayment": {"amount": num(total), "paymentTypeID": str(payment_type_id)}}
            sale = self._save_sale(body, None)
            return self._render_sale(sale, frozenset({"SaleLines", "SalePayments"}))

    def void_sale(self, sale_id: int) -> None:
        with self.lock:
            self._update_sale(self._get("Sale", sale_id), {"voided": "true"})

    def refund_sale(
        self,
        sale_id: int,
        lines: Iterable[tuple[int, int]] | None = None,
        *,
        payment_type_id: int = 1,
        completed: bool = True,
    ) -> dict[str, Any]:
        """A refund made at the till, as `POST Sale/{id}/refund.json` makes it: `lines` = (the sale's saleLineID,
        units taken back), None = the whole sale; paid back on `payment_type_id`; the refund sale as rendered."""
        body: dict[str, Any] = {
            "completed": flag(completed),
            "SalePayments": {"SalePayment": {"paymentTypeID": str(payment_type_id)}},
        }
        if lines is not None:
            body["SaleLines"] = {"SaleLine": [{"parentSaleLineID": str(i), "unitQuantity": str(-q)} for i, q in lines]}
        with self.lock:
            sale = self._refund(self._get("Sale", sale_id), body)
            return self._render_sale(sale, frozenset({"SaleLines", "SalePayments"}))

    # -- reads for tests ---------------------------------------------------------------------------------------------

    def item(self, item_id: int) -> dict[str, Any]:
        with self.lock:
            return self._render_item(self._item(item_id), frozenset(self.resources["Item"].relations))

    def items(self, *, archived: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.resources["Item"].rows.values()
            return [self._render_item(r, frozenset()) for r in rows if archived or not r.archived]

    def matrix(self, matrix_id: int) -> dict[str, Any]:
        with self.lock:
            return self._render_matrix(self._get("ItemMatrix", matrix_id), frozenset({"Items"}))

    def item_shops(self, item_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self._render_item_shop(r, frozenset()) for r in self._item_shops_by_item[item_id]]

    def qoh(self, item_id: int, shop_id: int) -> int:
        with self.lock:
            return next(r.qoh for r in self._item_shops_by_item[item_id] if r.shop_id == shop_id)

    def sales(self) -> list[dict[str, Any]]:
        with self.lock:
            relations = frozenset({"SaleLines", "SalePayments"})
            return [self._render_sale(s, relations) for s in self.resources["Sale"].rows.values()]

    def customers(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._render_customer(c, frozenset({"Contact"})) for c in self.resources["Customer"].rows.values()]

    def shops(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._render_shop(s, frozenset()) for s in self.resources["Shop"].rows.values()]

    def price_levels(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._render_price_level(p, frozenset()) for p in self.resources["PriceLevel"].rows.values()]

    def bucket_level(self) -> float:
        with self.lock:
            return self._drain(self.clock())

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self.lock:
            stats.update(
                drips_used=round(self.drips_used, 3),
                throttled_bucket=self.throttled_bucket,
                throttled_burst=self.throttled_burst,
                bucket_level=round(self._drain(self.clock()), 3),
                bucket_size=self.bucket_size,
                refresh_grants=self.oauth.refresh_grants,
            )
        return stats

    # -- state changes -----------------------------------------------------------------------------------------------

    def _touch(self, *names: str) -> None:
        for name in names:
            self.resources[name].touch()

    def _get(self, table: str, row_id: int | str) -> Any:
        try:
            key = int(row_id)
        except (TypeError, ValueError):
            key = -1
        row = self.resources[table].rows.get(key)
        if row is None:
            raise ApiError(404, f"{table} not found")
        return row

    def _item(self, item_id: int | str) -> ItemRow:
        row: ItemRow = self._get("Item", item_id)
        return row

    def _register_of(self, shop_id: int) -> int:
        return next((r["id"] for r in self.resources["Register"].rows.values() if r["shop_id"] == shop_id), 0)

    def _set_qoh(self, item_id: int, shop_id: int, qoh: int) -> None:
        rows = self._item_shops_by_item.get(item_id)
        if rows is None:
            raise KeyError(f"no item {item_id}")
        target = next((r for r in rows if r.shop_id == shop_id and shop_id != 0), None)
        if target is None:
            raise KeyError(f"no shop {shop_id}")
        if target.qoh == qoh:
            return
        now = self._now()
        target.qoh, target.ts = qoh, now
        rows[0].qoh, rows[0].ts = sum(r.qoh for r in rows[1:]), now
        self._touch("ItemShop")

    def _archive_item(self, row: ItemRow) -> None:
        row.archived = True
        row.ts = self._now()
        for shop_row in self._item_shops_by_item[row.id][1:]:
            self._set_qoh(row.id, shop_row.shop_id, 0)
        self._touch("Item")

    def _archive_matrix(self, matrix: dict[str, Any]) -> None:
        matrix["archived"] = True
        matrix["ts"] = self._now()
        for item in self._variants(matrix["id"]):
            if not item.archived:
                self._archive_item(item)
        self._touch("ItemMatrix")

    def _variants(self, matrix_id: int) -> list[ItemRow]:
        return [r for r in self.resources["Item"].rows.values() if r.matrix_id == matrix_id]

    def _renumber_categories(self) -> None:
        """Nested-set leftNode/rightNode, nodeDepth and fullPathName from the parent links (KVH category.md)."""
        rows = self.resources["Category"].rows
        children: dict[int, list[int]] = {}
        for row in rows.values():
            children.setdefault(row["parent_id"], []).append(row["id"])
        counter = 0

        def walk(node: int, depth: int, path: str) -> None:
            nonlocal counter
            for child in sorted(children.get(node, [])):
                row = rows[child]
                counter += 1
                row["left"], row["depth"] = counter, depth
                row["path"] = f"{path}/{row['name']}" if path else row["name"]
                walk(child, depth + 1, row["path"])
                counter += 1
                row["right"] = counter

        walk(0, 0, "")
        self.resources["Category"].touch()

    # -- rendering ---------------------------------------------------------------------------------------------------

    def _render_prices(self, prices: Mapping[int, float]) -> dict[str, Any]:
        levels = self.resources["PriceLevel"].rows
        rows = [
            {"amount": num(prices.get(level_id, 0.0)), "useTypeID": str(level_id), "useType": level["name"]}
            for level_id, level in sorted(levels.items())
            if not level["archived"]
        ]
        return {"ItemPrice": rows}  # always an array: every account has at least Default and MSRP

    def _render_item(self, row: ItemRow, relations: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "itemID": str(row.id),
            "systemSku": str(210000000000 + row.id),
            "defaultCost": num(row.default_cost),
            "avgCost": num(row.default_cost),
            "discountable": flag(row.discountable),
            "tax": flag(row.tax),
            "archived": flag(row.archived),
            "itemType": row.item_type,
            "serialized": "false",
            "description": row.description,
            "modelYear": "0",
            "upc": row.upc,
            "ean": row.ean,
            "customSku": row.custom_sku,
            "manufacturerSku": row.manufacturer_sku,
            "createTime": stamp(row.create_time),
            "timeStamp": stamp(row.ts),
            "publishToEcom": flag(row.publish_to_ecom),
            "categoryID": str(row.category_id),
            "taxClassID": "1",
            "departmentID": "0",
            "itemMatrixID": str(row.matrix_id),
            "manufacturerID": str(row.manufacturer_id),
            "seasonID": "0",
            "defaultVendorID": "0",
        }
        if "ItemShops" in relations:
            shop_rows = self._item_shops_by_item.get(row.id, [])
            out["ItemShops"] = relation("ItemShop", [self._render_item_shop(r, frozenset()) for r in shop_rows])
        if "ItemAttributes" in relations and row.matrix_id:
            a1, a2, a3 = row.attributes
            out["ItemAttributes"] = {
                "attribute1": a1,
                "attribute2": a2,
                "attribute3": a3,
                "itemAttributeSetID": str(row.attribute_set_id),
            }
        if "Images" in relations:
            out["Images"] = relation("Image", self._images(item_id=row.id))
        self._to_one(out, relations, row.category_id, row.manufacturer_id)
        out["Prices"] = self._render_prices(row.prices)
        return out

    def _to_one(self, out: dict[str, Any], relations: frozenset[str], category_id: int, maker_id: int) -> None:
        """To-one relations: the object when the foreign key points somewhere, left out when it is "0" [I]."""
        if "Category" in relations and category_id in self.resources["Category"].rows:
            out["Category"] = self._render_category(self.resources["Category"].rows[category_id], frozenset())
        if "Manufacturer" in relations and maker_id in self.resources["Manufacturer"].rows:
            out["Manufacturer"] = self._render_manufacturer(self.resources["Manufacturer"].rows[maker_id], frozenset())

    def _images(self, *, item_id: int = 0, matrix_id: int = 0) -> list[dict[str, Any]]:
        rows = self.resources["Image"].rows.values()
        found = [
            r for r in rows if (item_id and r["item_id"] == item_id) or (matrix_id and r["matrix_id"] == matrix_id)
        ]
        return [self._render_image(r, frozenset()) for r in sorted(found, key=lambda r: (r["ordering"], r["id"]))]

    def _render_item_shop(self, row: ItemShopRow, relations: frozenset[str]) -> dict[str, Any]:
        item = self.resources["Item"].rows.get(row.item_id)
        average = num(item.default_cost) if item is not None and row.shop_id == 0 else "0"
        return {
            "itemShopID": str(row.id),
            "qoh": str(row.qoh),
            "sellable": str(max(row.qoh, 0)),
            "backorder": "0",
            "componentQoh": "0",
            "componentBackorder": "0",
            "onLayaway": "0",
            "onSpecialOrder": "0",
            "onWorkorder": "0",
            "onTransferOut": "0",
            "onTransferIn": "0",
            "averageCost": average,
            "reorderPoint": str(row.reorder_point),
            "reorderLevel": str(row.reorder_level),
            "timeStamp": stamp(row.ts),
            "itemID": str(row.item_id),
            "shopID": str(row.shop_id),
        }

    def _render_matrix(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "itemMatrixID": str(row["id"]),
            "description": row["description"],
            "tax": flag(row["tax"]),
            "defaultCost": num(row["default_cost"]),
            "itemType": row["item_type"],
            "serialized": "false",
            "modelYear": "0",
            "archived": flag(row["archived"]),
            "timeStamp": stamp(row["ts"]),
            "itemAttributeSetID": str(row["attribute_set_id"]),
            "manufacturerID": str(row["manufacturer_id"]),
            "categoryID": str(row["category_id"]),
            "defaultVendorID": "0",
            "taxClassID": "1",
            "seasonID": "0",
            "departmentID": "0",
            "Prices": self._render_prices(row["prices"]),
        }
        variants = self._variants(row["id"])
        for n in range(3):
            values = list(dict.fromkeys(v.attributes[n] for v in variants if v.attributes[n]))
            if values:
                out[f"attribute{n + 1}Values"] = values
        if "Items" in relations:
            out["Items"] = relation("Item", [self._render_item(v, frozenset()) for v in variants if not v.archived])
        if "Images" in relations:
            out["Images"] = relation("Image", self._images(matrix_id=row["id"]))
        self._to_one(out, relations, row["category_id"], row["manufacturer_id"])
        return out

    def _render_shop(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "shopID": str(row["id"]),
            "name": row["name"],
            "serviceRate": "0",
            "timeZone": row["time_zone"],
            "taxLabor": "false",
            "labelTitle": "Shop Name",
            "labelMsrp": "false",
            "archived": flag(row["archived"]),
            "timeStamp": stamp(row["ts"]),
            "companyRegistrationNumber": "",
            "vatNumber": "",
            "zebraBrowserPrint": "false",
            "contactID": "0",
            "taxCategoryID": "0",
            "receiptSetupID": str(row["id"]),
            "ccGatewayID": "0",
            "gatewayConfigID": "",
            "priceLevelID": str(row["price_level_id"]),
        }
        if "Registers" in relations:
            registers = [r for r in self.resources["Register"].rows.values() if r["shop_id"] == row["id"]]
            out["Registers"] = relation("Register", [self._render_register(r, frozenset()) for r in registers])
        return out

    def _render_register(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "registerID": str(row["id"]),
            "name": row["name"],
            "open": "true",
            "openTime": stamp(row["open_time"]),
            "archived": flag(row["archived"]),
            "tipEnabled": "false",
            "openEmployeeID": "1",
            "shopID": str(row["shop_id"]),
            "ccTerminalID": "0",
        }

    def _render_price_level(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "priceLevelID": str(row["id"]),
            "name": row["name"],
            "archived": flag(row["archived"]),
            "canBeArchived": flag(row["can_be_archived"]),
            "type": "fixed",
            "Calculation": "",
        }

    def _render_payment_type(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "paymentTypeID": str(row["id"]),
            "name": row["name"],
            "requireCustomer": "false",
            "archived": flag(row["archived"]),
            "internalReserved": flag(row["internal"]),
            "type": row["type"],
            "refundAsPaymentTypeID": "0",
        }

    def _render_category(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "categoryID": str(row["id"]),
            "name": row["name"],
            "nodeDepth": str(row["depth"]),
            "fullPathName": row["path"],
            "leftNode": str(row["left"]),
            "rightNode": str(row["right"]),
            "createTime": stamp(row["create"]),
            "timeStamp": stamp(row["ts"]),
            "parentID": str(row["parent_id"]),
        }

    def _category_value(self, row: dict[str, Any], name: str) -> Any:
        keys = {
            "categoryID": "id",
            "name": "name",
            "parentID": "parent_id",
            "fullPathName": "path",
            "timeStamp": "ts",
            "leftNode": "left",
            "rightNode": "right",
        }
        return row[keys[name]]

    def _render_manufacturer(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "manufacturerID": str(row["id"]),
            "name": row["name"],
            "createTime": stamp(row["create"]),
            "timeStamp": stamp(row["ts"]),
        }

    def _render_image(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        return {
            "imageID": str(row["id"]),
            "description": row["description"],
            "filename": row["filename"],
            "ordering": str(row["ordering"]),
            "publicID": row["public_id"],
            "baseImageURL": "https://res.cloudinary.com/lightspeed-retail/image/upload/",
            "size": str(row["size"]),
            "createTime": stamp(row["create"]),
            "timeStamp": stamp(row["ts"]),
            "itemID": str(row["item_id"]),
            "itemMatrixID": str(row["matrix_id"]),
        }

    def _render_customer(self, row: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "firstName": row["first_name"],
            "lastName": row["last_name"],
            "title": row["title"],
            "company": row["company"],
            "companyRegistrationNumber": "",
            "vatNumber": "",
            "creditAccountID": "0",
            "customerTypeID": "0",
            "discountID": "0",
            "taxCategoryID": "0",
        }
        if "Contact" in relations:
            out["Contact"] = {
                "custom": "",
                "noEmail": flag(row["no_email"]),
                "noPhone": flag(row["no_phone"]),
                "noMail": flag(row["no_mail"]),
                "Addresses": relation("ContactAddress", [dict(a) for a in row["addresses"]]),
                "Phones": relation("ContactPhone", [{"number": n, "useType": u} for n, u in row["phones"]]),
                "Emails": relation("ContactEmail", [{"address": a, "useType": u} for a, u in row["emails"]]),
                "Websites": "",
                "timeStamp": stamp(row["ts"]),
            }
        out.update(
            customerID=str(row["id"]),
            createTime=stamp(row["create"]),
            timeStamp=stamp(row["ts"]),
            archived=flag(row["archived"]),
        )
        return out

    def _render_sale(self, sale: dict[str, Any], relations: frozenset[str]) -> dict[str, Any]:
        t = self._totals(sale)
        out: dict[str, Any] = {
            "saleID": str(sale["id"]),
            "timeStamp": stamp(sale["ts"]),
            "discountPercent": "0",
            "completed": flag(sale["completed"]),
            "archived": flag(sale["archived"]),
            "voided": flag(sale["voided"]),
            "enablePromotions": flag(sale["enable_promotions"]),
            "isTaxInclusive": "false",
            "createTime": stamp(sale["create"]),
            "updatetime": stamp(sale["update"]),
        }
        if sale["complete_time"]:
            out["completeTime"] = stamp(sale["complete_time"])
        out.update(
            {
                "referenceNumber": sale["reference"],
                "referenceNumberSource": sale["reference_source"],
                "tax1Rate": num(self.tax_rate),
                "tax2Rate": "0",
                "change": num(sale["change"]),
                "tipEnabled": "false",
                "receiptPreference": "printed",
                "displayableSubtotal": num(t["subtotal"]),
                "ticketNumber": str(TICKET_BASE + sale["id"]),
                "calcDiscount": num(t["discount"]),
                "calcTotal": num(t["total"]),
                "calcSubtotal": num(t["subtotal"]),
                "calcTaxable": num(t["taxable"]),
                "calcNonTaxable": num(t["subtotal"] - t["taxable"]),
                "calcAvgCost": "0",
                "calcFIFOCost": "0",
                "calcTax1": num(t["tax"]),
                "calcTax2": "0",
                "calcPayments": num(t["payments"]),
                "calcTips": "0",
                "total": num(t["total"]),
                "totalDue": num(t["total"]),
                "displayableTotal": num(t["total"]),
                "balance": num(t["total"] - t["payments"]),
                "customerID": str(sale["customer_id"]),
                "discountID": "0",
                "employeeID": str(sale["employee_id"]),
                "tipEmployeeID": "0",
                "quoteID": "0",
                "registerID": str(sale["register_id"]),
                "shipToID": "0",
                "shopID": str(sale["shop_id"]),
                "taxCategoryID": "0",
            }
        )
        if "Customer" in relations and sale["customer_id"] in self.resources["Customer"].rows:
            out["Customer"] = self._render_customer(self.resources["Customer"].rows[sale["customer_id"]], frozenset())
        if "SaleLines" in relations:
            out["SaleLines"] = relation("SaleLine", [self._render_line(sale, line) for line in sale["lines"]])
        if "SalePayments" in relations:
            out["SalePayments"] = relation("SalePayment", [self._render_payment(sale, p) for p in sale["payments"]])
        out["taxTotal"] = num(t["tax"])
        return out

    def _render_line(self, sale: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
        subtotal = line["qty"] * line["unit_price"] - line["discount"]
        tax = subtotal * self.tax_rate if line["tax"] else 0.0
        return {
            "saleLineID": str(line["id"]),
            "createTime": stamp(line["create"]),
            "timeStamp": stamp(line["ts"]),
            "unitQuantity": str(line["qty"]),
            "unitPrice": num(line["unit_price"]),
            "normalUnitPrice": num(line["normal_price"]),
            "discountAmount": num(line["discount"]),
            "discountPercent": "0",
            "avgCost": "0",
            "fifoCost": "0",
            "tax": flag(line["tax"]),
            "tax1Rate": num(self.tax_rate if line["tax"] else 0),
            "tax2Rate": "0",
            "isLayaway": "false",
            "isWorkorder": "false",
            "isSpecialOrder": "false",
            "displayableSubtotal": num(subtotal),
            "displayableUnitPrice": num(line["unit_price"]),
            "calcLineDiscount": num(line["discount"]),
            "calcTransactionDiscount": "0",
            "calcTotal": num(subtotal + tax),
            "calcSubtotal": num(subtotal),
            "calcTax1": num(tax),
            "calcTax2": "0",
            "taxClassID": "1",
            "customerID": str(sale["customer_id"]),
            "discountID": "0",
            "employeeID": str(sale["employee_id"]),
            "itemID": str(line["item_id"]),
            "noteID": "0",
            "parentSaleLineID": str(line.get("parent", 0)),
            "shopID": str(sale["shop_id"]),
            "saleID": str(sale["id"]),
        }

    def _render_payment(self, sale: dict[str, Any], payment: dict[str, Any]) -> dict[str, Any]:
        return {
            "salePaymentID": str(payment["id"]),
            "amount": num(payment["amount"]),
            "tipAmount": "0",
            "createTime": stamp(payment["create"]),
            "archived": "false",
            "remoteReference": payment["remote"],
            "paymentID": "",
            "saleID": str(sale["id"]),
            "paymentTypeID": str(payment["type_id"]),
            "ccChargeID": "0",
            "refPaymentID": "0",
            "registerID": str(sale["register_id"]),
            "employeeID": str(sale["employee_id"]),
            "creditAccountID": "0",
        }

    # -- HTTP: auth, rate limit, errors ------------------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        self._local.request = request
        self._local.cost = self._request_cost(request)
        self._local.hint = HINT_UNVERIFIED
        self._local.limiter = ""
        status, headers, payload = super().handle(request)
        if request.path != TOKEN_PATH and "X-LS-Api-Bucket-Level" not in headers:
            with self.lock:  # refused before the limiter (401): the headers still come, nothing is charged [I]
                headers = {**self._headers(self.clock(), 0.0), **headers}
        return status, headers, payload

    def _authenticate(self, request: Request) -> bool:
        if request.path == TOKEN_PATH:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False  # KVH best-practices.md: the token goes in `Authorization: Bearer`, never the query
        with self.lock:
            hint = self.oauth.check(token.strip())
        if hint is not None:
            self._local.hint = hint
            return False
        return True

    def _request_cost(self, request: Request) -> float:
        """Drips by the request alone, before anything is loaded (KVH rate-limiting.md "Request Costs")."""
        if request.path == TOKEN_PATH:
            return 0.0
        parts = request.path.removesuffix(".json").split("/")
        resource = parts[5] if len(parts) > 5 else "Account"
        single = len(parts) > 6
        cost = 1.0
        if request.method == "POST" and parts[-1] == "refund":
            return 10.0  # KVH sale-refund.md "Request Cost": POST/Create 10 drips
        if request.method in ("POST", "PUT", "DELETE"):
            cost = {"Sale": 2.0, "Category": 10.0}.get(resource, 1.0)
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(request.body) if request.body.strip() else {}
            except ValueError:
                body = None
            if isinstance(body, dict):
                cost += 0.5 * _nested_entities(body)
                if resource == "Sale" and _true(body.get("completed")):
                    cost += 3.0  # KVH sale.md "Request Cost": +3 when the payload completes the sale
        if request.method == "GET":
            if request.query.get("count") == "1":
                cost = 10.0  # KVH pagination.md "Counting"
            relations = self.resources.get(resource)
            if relations is not None and request.query.get("load_relations"):
                wanted = _relation_names(request.query["load_relations"], relations.relations)
                extra = sum(0.1 if relations.relations[name] == "one" else 0.2 for name in wanted)
                cost += extra * (1 if single else 2)  # KVH relations.md: doubled on query endpoints
        return round(cost, 4)

    def _drain(self, now: float) -> float:
        self._level = max(0.0, self._level - self.drip_rate * max(0.0, now - self._level_at))
        self._level_at = max(self._level_at, now)
        return self._level

    def _headers(self, now: float, cost: float) -> dict[str, str]:
        burst = self._burst_count if int(now) == self._burst_window else 0
        return {
            "X-LS-Acct-Id": str(self.account_id),
            "X-LS-Oauth-Client-Id": self.client_id,
            "X-LS-Api-Bucket-Level": f"{num(self._drain(now))}/{num(self.bucket_size)}",
            "X-LS-API-Burst-Level": f"{burst}/{self.burst_limit}",
            "X-LS-Api-Drip-Rate": num(self.drip_rate),
            "X-LS-Api-Request-Cost": num(cost),
        }

    def _rate_limit(self, now: float) -> RateDecision:
        request: Request = self._local.request
        if request.path == TOKEN_PATH:
            return RateDecision(True, {})
        cost: float = self._local.cost
        level = self._drain(now)
        window = int(now)
        if window != self._burst_window:
            self._burst_window, self._burst_count = window, 0
        self._burst_count += 1  # KVH: "All requests add 1 increment to the burst rate limiter"
        if self.rate_limit and self.burst_limit and self._burst_count > self.burst_limit:
            self.throttled_burst += 1
            self._local.limiter = "api-burst-limiter"
            headers = {**self._headers(now, cost), "X-LS-API-RateLimit-Type": "api-burst-limiter"}
            return RateDecision(False, headers, "1")
        if self.rate_limit and level > self.bucket_size:
            self.throttled_bucket += 1
            self._local.limiter = "api-leaky-bucket"
            wait = max(1, math.ceil((level - self.bucket_size) / self.drip_rate))
            headers = {**self._headers(now, cost), "X-LS-API-RateLimit-Type": "api-leaky-bucket"}
            return RateDecision(False, headers, str(wait))
        self._level = level + cost
        self.drips_used += cost
        return RateDecision(True, self._headers(now, cost))

    def _injected_retry_after(self, now: float) -> str:
        return "1"

    def _throttle_body(self, request: Request) -> Any:
        limiter = getattr(self._local, "limiter", "")
        message = "Burst rate limit exceeded" if limiter == "api-burst-limiter" else "Rate limit exceeded"
        return {"httpCode": "429", "httpMessage": "Too Many Requests", "message": message, "errorClass": "RateLimit"}

    def _error_body(self, request: Request, status: int, message: str) -> Any:
        if request.path == TOKEN_PATH:
            return {"error": "invalid_request", "error_description": message, "hint": message}
        if status == 401:  # KVH refresh-token.md
            hint = getattr(self._local, "hint", HINT_UNVERIFIED)
            return {"error": "access_denied", "error_description": ACCESS_DENIED, "hint": hint}
        # MKP items/create_invalid.yml (V2): {"httpCode","httpMessage","message","errorClass"}
        error_class = "Exception" if status < 500 else "ServerException"
        return {
            "httpCode": str(status),
            "httpMessage": HTTP_REASONS.get(status, "Error"),
            "message": message,
            "errorClass": error_class,
        }

    def _contract_body(self, request: Request, route: ContractRoute) -> Any:  # type: ignore[override]
        """The token route takes JSON, form or multipart (KVH authorization-code-grant.md); the API takes JSON."""
        if request.path == TOKEN_PATH:
            return _token_body(request)
        try:
            return json.loads(request.body) if request.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            return None

    # -- routes ------------------------------------------------------------------------------------------------------

    def _add_routes(self) -> None:
        add = self.router.add
        add("POST", TOKEN_PATH, self._token_route)
        add("GET", "/API/V3/Account.json", self._account_route)
        for name in (
            "Shop",
            "Register",
            "PriceLevel",
            "PaymentType",
            "Category",
            "Manufacturer",
            "Item",
            "ItemMatrix",
            "ItemShop",
            "Image",
            "Customer",
            "Sale",
            "SaleLine",
        ):
            resource = self.resources[name]
            id_param = "{" + resource.id_field + "}"
            add("GET", f"{API}/{name}.json", self._account(self._list_handler(resource)))
            add("GET", f"{API}/{name}/{id_param}.json", self._account(self._single_handler(resource)))
        writes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("POST", "Category", self._post_category),
            ("PUT", "Category/{categoryID}", self._put_category),
            ("DELETE", "Category/{categoryID}", self._delete_category),
            ("POST", "Manufacturer", self._post_manufacturer),
            ("PUT", "Manufacturer/{manufacturerID}", self._put_manufacturer),
            ("POST", "Item", self._post_item),
            ("PUT", "Item/{itemID}", self._put_item),
            ("DELETE", "Item/{itemID}", self._delete_item),
            ("POST", "ItemMatrix", self._post_matrix),
            ("PUT", "ItemMatrix/{itemMatrixID}", self._put_matrix),
            ("DELETE", "ItemMatrix/{itemMatrixID}", self._delete_matrix),
            ("PUT", "ItemShop/{itemShopID}", self._put_item_shop),
            ("POST", "Customer", self._post_customer),
            ("PUT", "Customer/{customerID}", self._put_customer),
            ("DELETE", "Customer/{customerID}", self._delete_customer),
            ("POST", "Sale", self._post_sale),
            ("PUT", "Sale/{saleID}", self._put_sale),
            ("DELETE", "Sale/{saleID}", self._delete_sale),
            ("POST", "Sale/{saleID}/refund", self._post_refund),
        ]
        for method, path, handler in writes:
            add(method, f"{API}/{path}.json", self._account(handler))

    def _account(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def checked(request: Request) -> Response:
            if request.params.get("accountID") != str(self.account_id):
                raise ApiError(403, "Access to this account is not allowed with this token")  # [I]
            return handler(request)

        return checked

    def _token_route(self, request: Request) -> Response:
        body = _token_body(request)
        if not isinstance(body, dict):
            return Response(400, self._error_body(request, 400, "The request body could not be read"))
        response = self.oauth.grant(body, self.client_id, self.client_secret)
        if response.status == 200:
            self.narrate(f"R-Series: OAuth token granted ({body.get('grant_type')})")
        return response

    def _account_route(self, request: Request) -> Response:
        account = {
            "accountID": str(self.account_id),
            "name": self.account_name,
            "link": {"@attributes": {"href": f"/API/V3/Account/{self.account_id}"}},
        }
        return Response(200, {"@attributes": {"count": "1"}, "Account": account})

    def _single(self, resource: Resource, row: Any, relations: frozenset[str]) -> Response:
        return Response(200, {"@attributes": {"count": "1"}, resource.name: resource.render(row, relations)})

    def _single_handler(self, resource: Resource) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            row = self._get(resource.name, request.params[resource.id_field])
            relations = _relation_names(request.query.get("load_relations", ""), resource.relations)
            return self._single(resource, row, relations)

        return handler

    def _list_handler(self, resource: Resource) -> Callable[[Request], Response]:
        return lambda request: self._list(resource, request)

    def _archived_mode(self, resource: Resource, query: Mapping[str, str]) -> str:
        if not resource.archivable:
            return "true"
        value = query.get("archived")
        if resource.name == "Customer":
            honoured = self.customer_archive_param
            value = query.get("archived") if honoured in ("archived", "both") else None
            if honoured in ("archive", "both") and query.get("archive") in ("1", "true"):
                value = "true"
        value = (value or "false").lower()
        return value if value in ("true", "only") else "false"

    def _list(self, resource: Resource, request: Request) -> Response:
        q = request.query
        relations = _relation_names(q.get("load_relations", ""), resource.relations)
        predicates = self._predicates(resource, q, relations)
        archived = self._archived_mode(resource, q)
        if archived == "false":
            predicates.append(lambda row: not resource.archived(row))
        elif archived == "only":
            predicates.append(resource.archived)
        if q.get("count") == "1":
            clash = sorted({"limit", "sort", "after", "before"} & set(q))
            if clash:
                raise ApiError(400, f"count cannot be combined with {', '.join(clash)}")
            total = sum(1 for row in resource.rows.values() if all(p(row) for p in predicates))
            return Response(200, {"@attributes": {"count": str(total)}})
        sort = q.get("sort") or resource.id_field
        descending = sort.startswith("-")
        sort_field = sort.removeprefix("-")
        if sort_field not in resource.sortable:
            raise ApiError(400, f"Invalid sort field '{sort_field}'. Sortable fields: {', '.join(resource.sortable)}")
        raw_limit = q.get("limit", "")
        limit = MAX_LIMIT if raw_limit in ("", "0") else min(max(_int(raw_limit, "limit"), 1), MAX_LIMIT)
        order = self._narrowed(resource, sort_field, q)
        page, has_more = self._page(resource, order, predicates, descending, limit, q)
        rows = [resource.rows[row_id] for _, row_id in page]
        base = {k: v for k, v in q.items() if k not in ("after", "before")}
        base.update(sort=sort, limit=str(limit))
        next_url = previous_url = ""
        if page and (has_more if "before" not in q else True):
            next_url = self._page_url(request.path, base, "after", page[-1], sort)
        if page and ("after" in q or ("before" in q and has_more)):
            previous_url = self._page_url(request.path, base, "before", page[0], sort)
        rendered = [resource.render(row, relations) for row in rows]
        body: dict[str, Any] = {"@attributes": {"next": next_url, "previous": previous_url}}
        if rendered:  # an empty page has no entity key [I]
            one = len(rendered) == 1 and self.single_row_list_as_object
            body[resource.name] = rendered[0] if one else rendered
        return Response(200, body)

    @staticmethod
    def _narrowed(resource: Resource, sort_field: str, q: Mapping[str, str]) -> list[tuple[Any, int]]:
        """The rows to scan in sort order: those an equality filter on `itemMatrixID` allows (indexed), else all."""
        raw = q.get("itemMatrixID")
        kind = resource.fields.get("itemMatrixID")
        if raw is None or kind is None or resource.name != "Item":
            return resource.order(sort_field)
        text = raw.removeprefix("=,")
        if any(text.startswith(op + ",") for op in OPERATORS) or not text.strip().isdigit():
            return resource.order(sort_field)
        return resource.order_where(sort_field, "itemMatrixID", _coerce(kind, text, "itemMatrixID"))

    def _page(
        self,
        resource: Resource,
        order: list[tuple[Any, int]],
        predicates: list[Callable[[Any], bool]],
        descending: bool,
        limit: int,
        q: Mapping[str, str],
    ) -> tuple[list[tuple[Any, int]], bool]:
        """Keyset paging on (sort value, id): `after` walks on past its key, `before` back from it."""
        sort = q.get("sort") or resource.id_field
        keys = order if not descending else list(reversed(order))
        start, step, stop = 0, 1, len(keys)
        if "after" in q:
            key = self._cursor(q["after"], sort)
            start = bisect_right(order, key) if not descending else len(order) - bisect_left(order, key)
        elif "before" in q:
            key = self._cursor(q["before"], sort)
            start = (bisect_left(order, key) if not descending else len(order) - bisect_right(order, key)) - 1
            step, stop = -1, -1
        found: list[tuple[Any, int]] = []
        index = start
        while index != stop and 0 <= index < len(keys):
            entry = keys[index]
            if all(p(resource.rows[entry[1]]) for p in predicates):
                if len(found) == limit:
                    return (found if step == 1 else found[::-1]), True
                found.append(entry)
            index += step
        return (found if step == 1 else found[::-1]), False

    def _page_url(self, path: str, base: Mapping[str, str], name: str, key: tuple[Any, int], sort: str) -> str:
        payload = json.dumps([sort, key[0], key[1]], separators=(",", ":")).encode()
        signature = hmac.new(self._cursor_key, payload, hashlib.sha256).digest()[:6]
        cursor = base64.urlsafe_b64encode(payload + b"." + signature).decode()
        return f"{self.url}{path}?{urlencode({**base, name: cursor})}"

    def _cursor(self, value: str, sort: str) -> tuple[Any, int]:
        """A cursor this simulator issued for this sort; anything else is refused (KVH pagination.md: "We strongly
        discourage crafting the values of these parameters yourself")."""
        try:
            raw = base64.urlsafe_b64decode(value.encode())
            # The signature is 6 bytes that may hold a "." themselves: split at its fixed position.
            payload, dot, signature = raw[:-7], raw[-7:-6], raw[-6:]
            if dot != b".":
                raise ValueError("no signature")
            expected = hmac.new(self._cursor_key, payload, hashlib.sha256).digest()[:6]
            decoded = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "Invalid pagination cursor") from exc
        if not hmac.compare_digest(signature, expected) or decoded[0] != sort:
            raise ApiError(400, "Invalid pagination cursor")
        return decoded[1], int(decoded[2])

    def _predicates(
        self, resource: Resource, q: Mapping[str, str], relations: frozenset[str]
    ) -> list[Callable[[Any], bool]]:
        predicates: list[Callable[[Any], bool]] = []
        for name, raw in q.items():
            if name in PAGING_PARAMS:
                continue
            if resource.name == "Item" and name == "itemCode":
                predicates.append(_item_code_filter(raw))
            elif resource.name == "Customer" and name == "Contact.email":
                if "Contact" in relations:  # KVH relations.md: the relation searched in must be loaded
                    predicates.append(_email_filter(compile_filter(name, "str", raw)))
            elif name in USING_FIELDS and resource.name in ("Item", "ItemMatrix") and not self.using_filters:
                continue  # switch using_filters=False: the vendor ignores them [unverified], every row comes back
            elif name in resource.fields:
                predicates.append(_field_filter(resource, name, compile_filter(name, resource.fields[name], raw)))
        return predicates

    # -- write handlers ----------------------------------------------------------------------------------------------

    def _post_category(self, request: Request) -> Response:
        body = request.json_object()
        parent = _int(body.get("parentID", 0) or 0, "parentID")
        if parent and parent not in self.resources["Category"].rows:
            raise ApiError(400, "Category not created. Parent category does not exist.")
        name = str(body.get("name") or str(body.get("fullPathName", "")).rsplit("/", 1)[-1])
        if not name:
            raise ApiError(400, "Category not created. A Category must have a name.")
        category_id = self.add_category(name, parent)
        return self._single(self.resources["Category"], self.resources["Category"].rows[category_id], frozenset())

    def _put_category(self, request: Request) -> Response:
        body = request.json_object()
        row = self._get("Category", request.params["categoryID"])
        if "name" in body:
            row["name"] = str(body["name"])
        if "parentID" in body:
            parent = _int(body["parentID"] or 0, "parentID")
            if parent == row["id"] or (parent and parent not in self.resources["Category"].rows):
                raise ApiError(400, "Category not updated. Invalid parent category.")
            row["parent_id"] = parent
        row["ts"] = self._now()
        self._renumber_categories()
        return self._single(self.resources["Category"], row, frozenset())

    def _delete_category(self, request: Request) -> Response:
        rows = self.resources["Category"].rows
        row = self._get("Category", request.params["categoryID"])
        row["ts"] = self._now()
        answer = self._single(self.resources["Category"], row, frozenset())
        for child in [r for r in rows.values() if r["parent_id"] == row["id"]]:
            child["parent_id"] = row["parent_id"]  # [I] children move up a level
        del rows[row["id"]]
        for item in self.resources["Item"].rows.values():
            if item.category_id == row["id"]:
                item.category_id = 0  # [I] the item's timeStamp stays
        self._renumber_categories()
        return answer

    def _post_manufacturer(self, request: Request) -> Response:
        body = request.json_object()
        maker_id = self.add_manufacturer(str(body["name"]))
        return self._single(self.resources["Manufacturer"], self.resources["Manufacturer"].rows[maker_id], frozenset())

    def _put_manufacturer(self, request: Request) -> Response:
        body = request.json_object()
        row = self._get("Manufacturer", request.params["manufacturerID"])
        row["name"], row["ts"] = str(body["name"]), self._now()
        self._touch("Manufacturer")
        return self._single(self.resources["Manufacturer"], row, frozenset())

    def _apply_item_fields(self, row: ItemRow, body: Mapping[str, Any]) -> None:
        text = {"description": "description", "customSku": "custom_sku", "manufacturerSku": "manufacturer_sku"}
        for key, attr in text.items():
            if key in body:
                setattr(row, attr, str(body[key]))
        for key in ("upc", "ean"):
            if key in body:
                value = str(body[key])
                if value and not re.fullmatch(r"\d{11,14}", value):
                    raise ApiError(400, f"Item not saved. {key} must be 11-14 digits.")  # KVH item.md
                setattr(row, key, value)
        for key, attr in (("tax", "tax"), ("discountable", "discountable"), ("publishToEcom", "publish_to_ecom")):
            if key in body:
                setattr(row, attr, _true(body[key]))
        if "defaultCost" in body:
            row.default_cost = _number(body["defaultCost"], "defaultCost")
        if "itemType" in body:
            row.item_type = str(body["itemType"])
        for key, table, attr in (
            ("categoryID", "Category", "category_id"),
            ("manufacturerID", "Manufacturer", "manufacturer_id"),
        ):
            if key in body:
                foreign = _int(body[key] or 0, key)
                if foreign and foreign not in self.resources[table].rows:
                    raise ApiError(400, f"Item not saved. {table} {foreign} does not exist.")
                setattr(row, attr, foreign)

    def _apply_prices(self, row_prices: dict[int, float], body: Mapping[str, Any]) -> bool:
        if "Prices" not in body:
            return False
        levels = self.resources["PriceLevel"].rows
        by_name = {level["name"]: level_id for level_id, level in levels.items()}
        given: dict[int, float] = {}
        for price in _rows_of(body["Prices"], "ItemPrice"):
            level_id = (
                _int(price["useTypeID"], "useTypeID")
                if "useTypeID" in price
                else by_name.get(str(price.get("useType")))
            )
            if level_id is None or level_id not in levels:
                raise ApiError(400, f"Invalid price level {price.get('useTypeID', price.get('useType'))!r}")
            given[level_id] = _number(price.get("amount", 0), "amount")
        if not self.price_put_keeps_other_levels:
            row_prices.clear()
        row_prices.update(given)
        return True

    def _post_item(self, request: Request) -> Response:
        body = request.json_object()
        matrix_id = _int(body.get("itemMatrixID", 0) or 0, "itemMatrixID")
        if matrix_id:
            self._get("ItemMatrix", matrix_id)
        attrs = ("", "", "")
        if matrix_id and isinstance(body.get("ItemAttributes"), dict):
            a = body["ItemAttributes"]
            attrs = (str(a.get("attribute1", "")), str(a.get("attribute2", "")), str(a.get("attribute3", "")))
        description = str(body.get("description", ""))
        if not matrix_id and not description.strip():
            raise ApiError(400, "Item not created. An Item must have a description.")  # MKP items/create_invalid.yml
        matrix = self.resources["ItemMatrix"].rows.get(matrix_id)
        item_id = self._new_item(
            description=description,
            price=0.0,
            ts=self._now(),
            matrix_id=matrix_id,
            attributes=attrs,
            qoh={shop_id: 0 for shop_id in self.resources["Shop"].rows},
        )
        row = self._item(item_id)
        if matrix is not None:
            row.prices = dict(matrix["prices"])
            row.category_id, row.manufacturer_id = matrix["category_id"], matrix["manufacturer_id"]
        else:
            row.prices = {level_id: 0.0 for level_id in row.prices}
        self._apply_item_fields(row, body)
        if matrix is not None and not description:
            row.description = _variant_description(matrix["description"], attrs)
        self._apply_prices(row.prices, body)
        self._touch("Item", "ItemShop")
        self.narrate(f"R-Series: item {item_id} created over the API")
        return self._single(self.resources["Item"], row, frozenset({"ItemShops"}))

    def _put_item(self, request: Request) -> Response:
        body = request.json_object()
        row = self._item(request.params["itemID"])
        if "archived" in body:
            if _true(body["archived"]):
                raise ApiError(400, "Item not updated. Items can only be archived with DELETE.")  # KVH item.md
            row.archived = False
        if "ItemAttributes" in body and row.matrix_id:
            self._put_attributes(row, body["ItemAttributes"])
        self._apply_item_fields(row, body)
        self._apply_prices(row.prices, body)
        if "ItemShops" in body:  # KVH tutorials/inventory-levels.md "Adjusting ItemShops Directly"
            shop_rows = self._item_shops_by_item[row.id]
            for change in _rows_of(body["ItemShops"], "ItemShop"):
                target = next(
                    (
                        r
                        for r in shop_rows[1:]
                        if str(r.id) == str(change.get("itemShopID")) or str(r.shop_id) == str(change.get("shopID"))
                    ),
                    None,
                )
                if target is None:
                    raise ApiError(400, "Item not updated. Unknown ItemShop.")
                if "qoh" in change:
                    self._set_qoh(row.id, target.shop_id, _int(change["qoh"], "qoh"))
                for key, attr in (("reorderPoint", "reorder_point"), ("reorderLevel", "reorder_level")):
                    if key in change:
                        setattr(target, attr, _int(change[key], key))
        if set(body) - {"ItemShops"}:
            row.ts = self._now()
        self._touch("Item")
        return self._single(self.resources["Item"], row, frozenset({"ItemShops"}))

    def _put_attributes(self, row: ItemRow, given: Any) -> None:
        if not isinstance(given, dict):
            raise ApiError(400, "Item not updated. ItemAttributes must be an object.")
        a1, a2, a3 = (
            str(given[f"attribute{n + 1}"]).strip() if f"attribute{n + 1}" in given else row.attributes[n]
            for n in range(3)
        )
        new = (a1, a2, a3)
        same = [
            v.id
            for v in self._variants(row.matrix_id)
            if v.id != row.id and not v.archived and [a.casefold() for a in v.attributes] == [a.casefold() for a in new]
        ]
        if same and self.duplicate_attributes_refused:
            raise ApiError(400, f"Item not updated. Item {same[0]} of this matrix has the same attribute values.")
        row.attributes = new
        matrix = self.resources["ItemMatrix"].rows.get(row.matrix_id)
        if matrix is not None:
            row.description = _variant_description(matrix["description"], new)

    def _delete_item(self, request: Request) -> Response:
        row = self._item(request.params["itemID"])
        self._archive_item(row)
        self.narrate(f"R-Series: item {row.id} archived over the API")
        return self._single(self.resources["Item"], row, frozenset())

    def _apply_matrix_body(self, matrix: dict[str, Any], body: Mapping[str, Any]) -> None:
        if "description" in body:
            matrix["description"] = str(body["description"])
        for key, attr in (("categoryID", "category_id"), ("manufacturerID", "manufacturer_id")):
            if key in body:
                matrix[attr] = _int(body[key] or 0, key)
        if "tax" in body:
            matrix["tax"] = _true(body["tax"])
        if "defaultCost" in body:
            matrix["default_cost"] = _number(body["defaultCost"], "defaultCost")
        prices_changed = self._apply_prices(matrix["prices"], body)
        now = self._now()
        matrix["ts"] = now
        for item in self._variants(matrix["id"]):  # [I] the variants follow their matrix
            item.description = _variant_description(matrix["description"], item.attributes)
            item.category_id, item.manufacturer_id = matrix["category_id"], matrix["manufacturer_id"]
            if prices_changed:
                item.prices = dict(matrix["prices"])
            item.ts = now
        self._touch("ItemMatrix", "Item")

    def _post_matrix(self, request: Request) -> Response:
        body = request.json_object()
        set_id = _int(body.get("itemAttributeSetID", 1) or 1, "itemAttributeSetID")
        if set_id not in ATTRIBUTE_SETS:
            raise ApiError(400, "ItemMatrix not created. Invalid itemAttributeSetID.")
        matrix_id = self._new_matrix(str(body["description"]), set_id, 0.0, 0, 0, self._now())
        matrix = self.resources["ItemMatrix"].rows[matrix_id]
        matrix["prices"] = {level_id: 0.0 for level_id in matrix["prices"]}
        self._apply_matrix_body(matrix, body)
        return self._single(self.resources["ItemMatrix"], matrix, frozenset())

    def _put_matrix(self, request: Request) -> Response:
        matrix = self._get("ItemMatrix", request.params["itemMatrixID"])
        self._apply_matrix_body(matrix, request.json_object())
        return self._single(self.resources["ItemMatrix"], matrix, frozenset())

    def _delete_matrix(self, request: Request) -> Response:
        matrix = self._get("ItemMatrix", request.params["itemMatrixID"])
        self._archive_matrix(matrix)
        return self._single(self.resources["ItemMatrix"], matrix, frozenset())

    def _put_item_shop(self, request: Request) -> Response:
        body = request.json_object()
        row: ItemShopRow = self._get("ItemShop", request.params["itemShopID"])
        if "qoh" in body and self.itemshop_qoh_put == "refuse":
            raise ApiError(400, "ItemShop not updated. Only reorderPoint and reorderLevel can be updated.")
        changed = False
        for key, attr in (("reorderPoint", "reorder_point"), ("reorderLevel", "reorder_level")):
            if key in body:
                setattr(row, attr, _int(body[key], key))
                changed = True
        if changed:
            row.ts = self._now()
            self._touch("ItemShop")
        return self._single(self.resources["ItemShop"], row, frozenset())

    # Whether an edit of only a customer's Contact (an email address) moves the Customer's `timeStamp` is undocumented
    # (KVH customer.md gives the Contact its own `timeStamp`; [I] unverified): this switch plays both answers.
    contact_edit_moves_customer_stamp = True

    def archive_customer(self, customer_id: int) -> None:
        """Customers > archive (or the secondary record of a merge, which R-Series archives): as `DELETE Customer`."""
        with self.lock:
            row = self._get("Customer", str(customer_id))
            row["archived"], row["ts"] = True, self._now()
            self._touch("Customer")

    def set_customer_emails(self, customer_id: int, *emails: str) -> None:
        """A user edits the customer's email addresses (its Contact only), the first one Primary."""
        with self.lock:
            row = self._get("Customer", str(customer_id))
            uses = ("Primary", "Secondary")[: len(emails)]  # one of each (KVH customer.md)
            entries = [{"address": e, "useType": u} for e, u in zip(emails, uses, strict=True)]
            self._apply_customer(row, {"Contact": {"Emails": {"ContactEmail": entries}}})

    def _apply_customer(self, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        contact_only = set(body) <= {"Contact"}
        for key, attr in (
            ("firstName", "first_name"),
            ("lastName", "last_name"),
            ("company", "company"),
            ("title", "title"),
        ):
            if key in body:
                row[attr] = str(body[key])
        contact = body.get("Contact")
        if isinstance(contact, dict):
            if "Emails" in contact:
                row["emails"] = [
                    (str(e.get("address", "")), str(e.get("useType", "Primary")))
                    for e in _rows_of(contact["Emails"], "ContactEmail")
                ]
            if "Phones" in contact:
                row["phones"] = [
                    (str(p.get("number", "")), str(p.get("useType", "Home")))
                    for p in _rows_of(contact["Phones"], "ContactPhone")
                ]
            if "Addresses" in contact:
                keys = ("address1", "address2", "city", "state", "stateCode", "zip", "country", "countryCode")
                row["addresses"] = [
                    {k: str(a.get(k, "")) for k in keys} for a in _rows_of(contact["Addresses"], "ContactAddress")
                ]
            for key, attr in (("noEmail", "no_email"), ("noPhone", "no_phone"), ("noMail", "no_mail")):
                if key in contact:
                    row[attr] = _true(contact[key])
        if not contact_only or self.contact_edit_moves_customer_stamp:
            row["ts"] = self._now()
        self._touch("Customer")

    def _post_customer(self, request: Request) -> Response:
        body = request.json_object()
        customer_id = self.add_customer(str(body.get("firstName", "")), str(body.get("lastName", "")))
        row = self.resources["Customer"].rows[customer_id]
        self._apply_customer(row, body)
        return self._single(self.resources["Customer"], row, frozenset({"Contact"}))

    def _put_customer(self, request: Request) -> Response:
        body = request.json_object()
        row = self._get("Customer", request.params["customerID"])
        if "archived" in body:
            row["archived"] = _true(body["archived"])  # KVH customer.md: un-archive with archived=false
        self._apply_customer(row, body)
        return self._single(self.resources["Customer"], row, frozenset({"Contact"}))

    def _delete_customer(self, request: Request) -> Response:
        row = self._get("Customer", request.params["customerID"])
        row["archived"], row["ts"] = True, self._now()
        self._touch("Customer")
        return self._single(self.resources["Customer"], row, frozenset())

    # -- sales -------------------------------------------------------------------------------------------------------

    def _totals(self, sale: Mapping[str, Any]) -> dict[str, float]:
        subtotal = sum(line["qty"] * line["unit_price"] for line in sale["lines"])
        discount = sum(line["discount"] for line in sale["lines"])
        taxable = sum(line["qty"] * line["unit_price"] - line["discount"] for line in sale["lines"] if line["tax"])
        tax = round(taxable * self.tax_rate, 2)
        payments = sum(p["amount"] for p in sale["payments"])
        total = round(subtotal - discount + tax, 2)
        return {
            "subtotal": subtotal,
            "discount": discount,
            "taxable": taxable,
            "tax": tax,
            "total": total,
            "payments": round(payments, 2),
        }

    def _sale_from_body(self, body: Mapping[str, Any], sale: dict[str, Any] | None) -> dict[str, Any]:
        """The sale this body makes (a copy when updating): nothing is stored until it is known to be valid."""
        now = self._now()
        if sale is None:
            shop_id = _int(body.get("shopID", 1) or 1, "shopID")
            self._get("Shop", shop_id)
            customer_id = _int(body.get("customerID", 0) or 0, "customerID")
            if customer_id:
                self._get("Customer", customer_id)
            draft: dict[str, Any] = {
                "id": 0,
                "create": now,
                "update": now,
                "ts": now,
                "complete_time": 0,
                "completed": False,
                "voided": False,
                "archived": False,
                "reference": str(body.get("referenceNumber", "")),
                "reference_source": str(body.get("referenceNumberSource", "")),
                "customer_id": customer_id,
                "employee_id": _int(body.get("employeeID", 1) or 1, "employeeID"),
                "register_id": _int(body.get("registerID", 0) or self._register_of(shop_id), "registerID"),
                "shop_id": shop_id,
                "enable_promotions": _true(body.get("enablePromotions", False)),
                "change": 0.0,
                "lines": [],
                "payments": [],
            }
        else:
            draft = {**sale, "lines": list(sale["lines"]), "payments": list(sale["payments"])}
            for key, attr in (("referenceNumber", "reference"), ("referenceNumberSource", "reference_source")):
                if key in body:
                    draft[attr] = str(body[key])
        price_level = self.resources["Shop"].rows[draft["shop_id"]]["price_level_id"]
        for line in _rows_of(body.get("SaleLines"), "SaleLine"):
            item = self._line_item(line)
            price = item.prices.get(price_level, item.prices.get(1, 0.0))
            unit = _number(line["unitPrice"], "unitPrice") if "unitPrice" in line else price
            draft["lines"].append(
                {
                    "id": 0,
                    "item_id": item.id,
                    "qty": _int(line.get("unitQuantity", 1), "unitQuantity"),
                    "unit_price": unit,
                    "normal_price": price,
                    "discount": _number(line.get("discountAmount", 0), "d"),
                    "tax": item.tax and _true(line.get("tax", True)),
                    "create": now,
                    "ts": now,
                    "parent": _int(line.get("parentSaleLineID", 0) or 0, "parentSaleLineID"),
                }
            )
        self._check_refund_lines(draft)
        for payment in _rows_of(body.get("SalePayments"), "SalePayment"):
            type_id = _int(payment.get("paymentTypeID", 0) or 0, "paymentTypeID")
            self._get("PaymentType", type_id)
            draft["payments"].append(
                {
                    "id": 0,
                    "amount": _number(payment.get("amount", 0), "amount"),
                    "type_id": type_id,
                    "remote": str(payment.get("remoteReference", "")),
                    "create": now,
                }
            )
        return draft

    def _line_item(self, line: Mapping[str, Any]) -> ItemRow:
        """`itemID`, or an `itemCode` matching itemID, upc or ean (KVH sale.md)."""
        if "itemID" in line:
            return self._item(line["itemID"])
        code = str(line.get("itemCode", ""))
        for row in self.resources["Item"].rows.values():
            if code and code in (str(row.id), row.upc, row.ean):
                found: ItemRow = row
                return found
        raise ApiError(400, "Sale not saved. A SaleLine needs an itemID or a known itemCode.")

    def _complete(self, draft: dict[str, Any]) -> None:
        """KVH tutorials/sales.md: "the sale must be balanced"; cash over the total becomes change."""
        totals = self._totals(draft)
        paid, total = totals["payments"], totals["total"]
        if abs(paid - total) > 0.005:
            cash = [p for p in draft["payments"] if self.resources["PaymentType"].rows[p["type_id"]]["type"] == "cash"]
            if paid < total or not cash:
                raise ApiError(
                    400, f"Sale not completed. Payments ({num(paid)}) must equal the sale total ({num(total)})."
                )
            change = round(paid - total, 2)
            cash[-1]["amount"] = round(cash[-1]["amount"] - change, 2)
            draft["change"] = change
        now = self._now()
        draft["completed"], draft["complete_time"], draft["ts"] = True, now, now

    def _save_sale(self, body: Mapping[str, Any], sale: dict[str, Any] | None) -> dict[str, Any]:
        draft = self._sale_from_body(body, sale)
        completing = _true(body.get("completed")) and not draft["completed"]
        if completing:
            self._complete(draft)
        if draft["id"] == 0:
            draft["id"] = self._id("Sale")
        for line in draft["lines"]:
            if line["id"] == 0:
                line["id"] = self._id("SaleLine")
            self.resources["SaleLine"].rows[line["id"]] = {"sale_id": draft["id"], "line": line}
        for payment in draft["payments"]:
            if payment["id"] == 0:
                payment["id"] = self._id("SalePayment")
        draft["update"] = self._now()
        if not draft["completed"]:
            draft["ts"] = draft["update"]
        self.resources["Sale"].rows[draft["id"]] = draft
        if completing:
            self._move_stock(draft, -1)
        self._touch("Sale", "SaleLine")
        what = "completed" if draft["completed"] else "saved"
        self.narrate(f"R-Series: sale {draft['id']} {what} (ref {draft['reference'] or '-'})")
        return draft

    def _move_stock(self, sale: Mapping[str, Any], sign: int) -> None:
        for line in sale["lines"]:
            item = self.resources["Item"].rows.get(line["item_id"])
            if item is None or item.item_type == "non_inventory":
                continue
            current = self.qoh_of(item.id, sale["shop_id"])
            self._set_qoh(item.id, sale["shop_id"], current + sign * line["qty"])

    def qoh_of(self, item_id: int, shop_id: int) -> int:
        return next(r.qoh for r in self._item_shops_by_item[item_id] if r.shop_id == shop_id)

    def _update_sale(self, sale: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        if _true(body.get("voided")):
            if not sale["voided"]:
                if sale["completed"]:
                    self._move_stock(sale, +1)
                sale["voided"], sale["update"], sale["ts"] = True, self._now(), self._now()
                self._touch("Sale")
                self.narrate(f"R-Series: sale {sale['id']} voided")
            return sale
        if sale["completed"] and ({"SaleLines", "SalePayments"} & set(body)):
            raise ApiError(400, "Sale not updated. A completed sale cannot be changed.")  # [I]
        return self._save_sale(body, sale)

    def _post_sale(self, request: Request) -> Response:
        sale = self._save_sale(request.json_object(), None)
        return self._single(self.resources["Sale"], sale, self._sale_write_relations(sale))

    def _put_sale(self, request: Request) -> Response:
        sale = self._update_sale(self._get("Sale", request.params["saleID"]), request.json_object())
        return self._single(self.resources["Sale"], sale, self._sale_write_relations(sale))

    def _delete_sale(self, request: Request) -> Response:
        sale = self._get("Sale", request.params["saleID"])
        sale["archived"], sale["update"] = True, self._now()
        self._touch("Sale")
        return self._single(self.resources["Sale"], sale, frozenset())

    @staticmethod
    def _sale_write_relations(sale: Mapping[str, Any]) -> frozenset[str]:
        """KVH tutorials/sales.md: the write answers carry the sale's lines and payments."""
        return frozenset(name for name, key in (("SaleLines", "lines"), ("SalePayments", "payments")) if sale[key])

    # -- refunds (KVH endpoints/sale-refund.md, saleline.md `parentSaleLineID`) --------------------------------------

    def _refunded(self, parent_id: int, excluding_sale: int) -> int:
        """Units of a line already refunded by the other live (not voided, not archived) sales' refund lines."""
        total = 0
        for row in self.resources["SaleLine"].rows.values():
            sale = self.resources["Sale"].rows[row["sale_id"]]
            line = row["line"]
            if line.get("parent") == parent_id and sale["id"] != excluding_sale and not sale["voided"]:
                total += 0 if sale["archived"] else -line["qty"]
        return total

    def _check_refund_lines(self, draft: Mapping[str, Any]) -> None:
        """KVH saleline.md `parentSaleLineID`: "Makes sure refunds of a line don't exceed the original lines
        quantity"; a refund line takes units back (negative unitQuantity, saleline.md) [I: 400 otherwise]."""
        asked: dict[int, int] = {}
        for line in draft["lines"]:
            if line.get("parent"):
                if line["qty"] >= 0:
                    raise ApiError(400, "Sale not saved. A refund line needs a negative unitQuantity.")
                asked[line["parent"]] = asked.get(line["parent"], 0) - line["qty"]
        for parent_id, quantity in asked.items():
            row = self.resources["SaleLine"].rows.get(parent_id)
            original = row["line"] if row is not None else None
            if original is None or original.get("parent") or original["qty"] <= 0:
                raise ApiError(400, f"Sale not saved. SaleLine {parent_id} is not a line that can be refunded.")
            left = original["qty"] - self._refunded(parent_id, draft["id"])
            if quantity > left:
                raise ApiError(
                    400, f"Sale not saved. Refunding {quantity} of SaleLine {parent_id} exceeds the {left} left."
                )

    def _refund(self, original: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        """The refund sale of `original` that a refund.json body makes (see the module docstring)."""
        if not original["completed"] or original["voided"] or original["archived"]:
            raise ApiError(400, f"Refund not created. Sale {original['id']} is not a completed sale.")  # [I]
        payments = _rows_of(body.get("SalePayments"), "SalePayment")
        if not payments or not all(p.get("paymentTypeID") for p in payments):  # KVH: "At least one PaymentType"
            raise ApiError(400, "Refund not created. SalePayments needs at least one paymentTypeID.")
        lines = {line["id"]: line for line in original["lines"] if line["qty"] > 0 and not line.get("parent")}
        asked = _rows_of(body.get("SaleLines"), "SaleLine")
        wanted: list[tuple[dict[str, Any], int | None]] = []
        for row in asked:
            parent = lines.get(_int(row.get("parentSaleLineID", 0) or 0, "parentSaleLineID"))
            if parent is None:
                raise ApiError(400, f"Refund not created. A SaleLine must name a line of sale {original['id']}.")
            quantity = _int(row["unitQuantity"], "unitQuantity") if "unitQuantity" in row else None
            wanted.append((parent, quantity))
        if not asked:  # KVH: "Able to easily Refund an entire Sale, without specifying individual SaleLines"
            wanted = [(line, None) for line in lines.values()]
        refund_lines = []
        for parent, quantity in wanted:
            left = parent["qty"] - self._refunded(parent["id"], 0)
            quantity = -left if quantity is None else quantity
            if quantity == 0 and not asked:
                continue  # already refunded in full
            share = quantity / parent["qty"]
            refund_lines.append(
                {
                    "itemID": str(parent["item_id"]),
                    "unitQuantity": str(quantity),
                    "unitPrice": num(parent["unit_price"]),
                    "discountAmount": num(parent["discount"] * share),
                    "tax": flag(parent["tax"]),
                    "parentSaleLineID": str(parent["id"]),
                }
            )
        if not refund_lines:
            raise ApiError(400, f"Refund not created. Nothing is left to refund on sale {original['id']}.")  # [I]
        copies = self.refund_copies_reference
        refund: dict[str, Any] = {
            "shopID": str(body.get("shopID") or original["shop_id"]),
            "registerID": str(body.get("registerID") or original["register_id"]),
            "employeeID": str(body.get("employeeID") or original["employee_id"]),
            "customerID": str(original["customer_id"]),
            "referenceNumber": original["reference"] if copies else "",
            "referenceNumberSource": original["reference_source"] if copies else "",
            "SaleLines": {"SaleLine": refund_lines},
        }
        total = self._totals(self._sale_from_body(refund, None))["total"]
        # KVH sale-refund.md: "refund amounts can be optional": the first payment without one takes what is left.
        left = total - sum(_number(p["amount"], "amount") for p in payments if "amount" in p)
        rows = []
        for payment in payments:
            amount = _number(payment["amount"], "amount") if "amount" in payment else left
            left = left if "amount" in payment else 0.0
            rows.append({"paymentTypeID": str(payment.get("paymentTypeID", "")), "amount": num(amount)})
        completed = _true(body.get("completed", True))  # KVH sale-refund.md: "optional, default: true"
        if completed and abs(sum(float(r["amount"]) for r in rows) - total) > 0.005:
            raise ApiError(400, f"Refund not completed. Payments must equal the refund total ({num(total)}).")  # [I]
        refund["SalePayments"] = {"SalePayment": rows}
        refund["completed"] = flag(completed)
        sale = self._save_sale(refund, None)
        if self.refund_touches_original:
            original["update"] = self._now()
            self._touch("Sale")
        self.narrate(f"R-Series: sale {sale['id']} refunds sale {original['id']}")
        return sale

    def _post_refund(self, request: Request) -> Response:
        raw = _int(request.params["saleID"], "saleID")
        # KVH sale-refund.md: "Can specify a ticketNumber as the Sale ID in the URL" (ticketNumber 2200000... + id).
        original = self._get("Sale", raw - TICKET_BASE if raw > TICKET_BASE else raw)
        sale = self._refund(original, request.json_object())
        return self._single(self.resources["Sale"], sale, self._sale_write_relations(sale))


# -- module helpers --------------------------------------------------------------------------------------------------

USING_FIELDS = ("categoryID", "manufacturerID")  # Item / ItemMatrix filters switched by `using_filters`
ITEM_FILTERS = {
    "itemID": "int",
    "systemSku": "str",
    "customSku": "str",
    "manufacturerSku": "str",
    "upc": "str",
    "ean": "str",
    "description": "str",
    "itemMatrixID": "int",
    "categoryID": "int",
    "manufacturerID": "int",
    "itemType": "str",
    "publishToEcom": "bool",
    "defaultCost": "float",
    "timeStamp": "time",
    "createTime": "time",
}
SALE_FILTERS = {
    "saleID": "int",
    "timeStamp": "time",
    "completed": "bool",
    "voided": "bool",
    "referenceNumber": "str",
    "referenceNumberSource": "str",
    "shopID": "int",
    "registerID": "int",
    "customerID": "int",
    "completeTime": "time",
    "updatetime": "time",
    "createTime": "time",
}
# KVH saleline.md fields (query-parameters.md operators on any field; `IN` on ids).
SALE_LINE_FILTERS = {
    "saleLineID": "int",
    "saleID": "int",
    "itemID": "int",
    "parentSaleLineID": "int",
    "timeStamp": "time",
}
_ITEM_ATTRS = {
    "itemID": "id",
    "customSku": "custom_sku",
    "manufacturerSku": "manufacturer_sku",
    "upc": "upc",
    "ean": "ean",
    "description": "description",
    "itemMatrixID": "matrix_id",
    "categoryID": "category_id",
    "manufacturerID": "manufacturer_id",
    "itemType": "item_type",
    "publishToEcom": "publish_to_ecom",
    "defaultCost": "default_cost",
    "timeStamp": "ts",
    "createTime": "create_time",
}
_SALE_KEYS = {
    "saleID": "id",
    "timeStamp": "ts",
    "completed": "completed",
    "voided": "voided",
    "referenceNumber": "reference",
    "referenceNumberSource": "reference_source",
    "shopID": "shop_id",
    "registerID": "register_id",
    "customerID": "customer_id",
    "completeTime": "complete_time",
    "updatetime": "update",
    "createTime": "create",
}


def _getter(keys: Mapping[str, str]) -> Callable[[Any, str], Any]:
    return lambda row, name: row[keys[name]]


def _item_value(row: ItemRow, name: str) -> Any:
    if name == "systemSku":
        return str(210000000000 + row.id)
    return getattr(row, _ITEM_ATTRS[name])


def _item_shop_value(row: ItemShopRow, name: str) -> Any:
    keys = {"itemShopID": "id", "itemID": "item_id", "shopID": "shop_id", "qoh": "qoh", "timeStamp": "ts"}
    return getattr(row, keys[name])


def _sale_value(row: dict[str, Any], name: str) -> Any:
    return row[_SALE_KEYS[name]]


def _sale_line_value(row: dict[str, Any], name: str) -> Any:
    if name == "saleID":
        return row["sale_id"]
    line = row["line"]
    keys = {"saleLineID": "id", "itemID": "item_id", "timeStamp": "ts"}
    return line[keys[name]] if name in keys else line.get("parent", 0)


def _email_filter(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda row: any(test(address) for address, _ in row["emails"])


def _field_filter(resource: Resource, name: str, test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda row: test(resource.value(row, name))


def _item_code_filter(raw: str) -> Callable[[ItemRow], bool]:
    """KVH item.md: itemCode matches itemID, upc or ean; only `=` and `IN`."""
    if raw.startswith("IN,"):
        text = raw[3:].strip()
        wanted = {str(v) for v in (json.loads(text) if _valid_json(text) else text.strip("[]").split(","))}
    elif raw.startswith("=,") or not re.match(r"^(><|>=|<=|!=|!~|>|<|~),", raw):
        wanted = {raw.removeprefix("=,")}
    else:
        raise ApiError(400, "itemCode supports only the = and IN operators")
    return lambda row: bool({str(row.id), row.upc, row.ean} & wanted)


def _variant_description(matrix_description: str, attributes: Iterable[str]) -> str:
    """KVH itemmatrix.md: "Items in the matrix get the description: <ItemMatrix.description> <attribute1> ..."."""
    return " ".join([matrix_description, *(a for a in attributes if a)])


def _relation_names(raw: str, known: Mapping[str, str]) -> frozenset[str]:
    """`load_relations=["ItemShops","Images"]` or `all` (KVH relations.md). Documented relations this simulator does
    not serve are ignored [I]."""
    raw = raw.strip()
    if not raw:
        return frozenset()
    if raw == "all":
        return frozenset(known)
    try:
        names = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "load_relations must be a JSON array of relation names") from exc
    if not isinstance(names, list):
        raise ApiError(400, "load_relations must be a JSON array of relation names")
    return frozenset(str(n) for n in names if str(n) in known)


def _nested_entities(body: Mapping[str, Any]) -> int:
    """Entities nested in a write payload (KVH rate-limiting.md "Request Payload Costs"): each object under a
    capitalised relation key, wrappers like {"SaleLine": [...]} not counted."""
    count = 0
    for key, value in body.items():
        if not key[:1].isupper():
            continue
        for entity in _entities(value):
            count += 1 + _nested_entities(entity)
    return count


def _entities(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return []
    if len(value) == 1:
        ((inner_key, inner),) = value.items()
        if inner_key[:1].isupper() and isinstance(inner, (dict, list)):
            return _entities(inner) if isinstance(inner, list) else [inner]
    return [value]


def _token_body(request: Request) -> Any:
    """JSON, x-www-form-urlencoded or multipart/form-data (curl -F) token request bodies."""
    content_type = request.headers.get("content-type", "")
    raw = request.body
    if "multipart/form-data" in content_type:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                fields[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        return fields
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)) if b"=" in raw else None
