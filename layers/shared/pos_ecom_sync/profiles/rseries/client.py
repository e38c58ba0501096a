"""Lightspeed Retail R-Series (ex-MerchantOS) API V3 client: the calls the sync makes, nothing more.

Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (a mirror of developers.lightspeedhq.com/retail),
MKP = marketplacer/lightspeed_pos recorded cassettes; contracts/rseries.json declares every request made here.

- Base `{base_url}/API/V3/Account/{accountID}/{Entity}.json` (KVH `introduction/pagination.md`); the account id is
  the connection's, or the first of `GET /API/V3/Account.json` (KVH `endpoints/account.md`).
- `Authorization: Bearer` (KVH `introduction/best-practices.md`); a 401 `access_denied` refreshes once and resends
  once (`profiles.oauth.BearerAuth`, `auth.RSeriesTokens`).
- Lists: `limit` at most 100; the next page is `@attributes.next`, followed verbatim (KVH pagination.md: "We
  strongly discourage crafting the values of these parameters yourself"); `load_relations` is a JSON array
  (KVH `introduction/relations.md`). Every scalar is a string; `envelope` reads them.
- Rate: a leaky bucket per account and client (`ratelimit.rseries_policy`), each request priced by
  `ratelimit.rseries_request_cost` before it is sent and the `X-LS-Api-Bucket-Level` of each answer fed back
  (`rseries_observation`); a 429 waits for its `Retry-After` through the budget or raises RateLimited
  (`connectors.http.VendorHttp`).
The bearer token never appears in errors or logs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from pos_ecom_sync.connectors.http import DEFAULT_MAX_RETRIES, VendorHttp
from pos_ecom_sync.errors import ConfigurationError, UpstreamError
from pos_ecom_sync.models.connection import ApiSecrets
from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.profiles.oauth import BearerAuth, TokenProvider
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.auth import RSeriesTokens, token_rejected
from pos_ecom_sync.ratelimit import RateBudget, rseries_observation, rseries_policy, rseries_request_cost

JsonObject = dict[str, Any]
MAX_LIMIT = 100  # KVH pagination.md, query-parameters.md (limit 0-100)
# Walking a whole list stops here even if the vendor keeps giving `next` (a broken cursor).
MAX_PAGES = 10_000
# Ids per `IN,[...]` filter (KVH query-parameters.md: "IN ... max 100 values").
MAX_IN_VALUES = 100


@dataclass(frozen=True)
class FeedEntity:
    """How an entity is polled for changes (KVH each `endpoints/*.md` "Sortable Fields" and fields)."""

    name: str
    id_field: str
    stamp_field: str = "timeStamp"
    # Whether the list declares `archived` (without `archived=true` a poller never sees an archival).
    archivable: bool = True
    # Relations each row is read with (`load_relations`): what the feed's reader needs of a row.
    relations: tuple[str, ...] = ()
    # Also send `archive=1`: KVH customer.md names that parameter for archived customers, query-parameters.md
    # `archived=true` (contract `unverified`): sending both, a poller sees an archival whichever the vendor honours.
    archive_param: bool = False


# Sale: `timeStamp` is "legacy ... or if complete the date/time at which it was completed", `updatetime` "the last
# date/time that the sale was updated" (KVH endpoints/sale.md), so a void after completion moves `updatetime` only.
FEED_ENTITIES: dict[str, FeedEntity] = {
    entity.name: entity
    for entity in (
        FeedEntity("Item", "itemID"),  # KVH endpoints/item.md
        FeedEntity("ItemMatrix", "itemMatrixID"),  # KVH endpoints/itemmatrix.md
        FeedEntity("ItemShop", "itemShopID", archivable=False),  # KVH endpoints/itemshop.md ("poll for changes")
        FeedEntity("Category", "categoryID", archivable=False),  # KVH endpoints/category.md (real DELETE)
        FeedEntity("Manufacturer", "manufacturerID", archivable=False),  # KVH endpoints/manufacturer.md
        # KVH endpoints/customer.md; the customer index's feed reads each row's email addresses (its Contact).
        FeedEntity("Customer", "customerID", relations=("Contact",), archive_param=True),
        FeedEntity("Sale", "saleID", stamp_field="updatetime"),  # KVH endpoints/sale.md
    )
}


# The lists of families by category or manufacturer (`list_using`): entity -> its id field.
USING_LISTS = {"Item": "itemID", "ItemMatrix": "itemMatrixID"}
USING_FIELDS = frozenset({"categoryID", "manufacturerID"})


@dataclass(frozen=True)
class Page:
    """One list page: its rows (normalised to a list) and the vendor's URL of the next page (None at the end)."""

    rows: list[JsonObject] = field(default_factory=list)
    next_url: str | None = None


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _relations(names: Sequence[str]) -> str | None:
    """`load_relations` as the JSON array KVH relations.md shows (`["ItemShops","ItemAttributes"]`)."""
    return json.dumps(list(names), separators=(",", ":")) if names else None


def _in(values: Sequence[str | int]) -> str:
    """An `IN` filter (KVH query-parameters.md: `itemID=IN,[1,2,3]`)."""
    return "IN,[" + ",".join(str(int(value)) for value in values) + "]"


def _id(value: str | int) -> str:
    """An R-Series id as sent in a path or filter: its digits (ids are integers, KVH field tables)."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"not an R-Series id: {text[:40]!r}")
    return text


def _chunks(values: Sequence[str | int], size: int) -> Iterator[list[str]]:
    ids = list(dict.fromkeys(_id(value) for value in values))
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def price_levels_body(levels: Mapping[str, Decimal]) -> JsonObject:
    """`Prices.ItemPrice[{useTypeID, amount}]` for an Item PUT (KVH item.md POST sample)."""
    return {
        "Prices": {
            "ItemPrice": [{"useTypeID": level, "amount": str(amount)} for level, amount in sorted(levels.items())]
        }
    }


class RSeriesClient:
    def __init__(
        self,
        base_url: str,
        budget: RateBudget,
        *,
        account_id: str | None = None,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        registers: int = 1,
        max_wait_s: float = 2.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`base_url` is the API origin (`https://api.lightspeedapp.com`, or a simulator's); `token` a static access
        token (tests) or `token_provider` the connection's rotating OAuth pair (`auth.RSeriesTokens`)."""
        if token_provider is None and not token:
            raise ValueError("RSeriesClient needs an access token or a token_provider")
        policy = rseries_policy(registers)
        self._account_id = _id(account_id) if account_id else None
        http: VendorHttp | None = None

        def before_retry(request: httpx.Request) -> None:
            assert http is not None
            query = request.url.query.decode()
            body = json.loads(request.content) if request.content else None
            http.take_slot(request.method, request.url.path + (f"?{query}" if query else ""), body)

        auth = BearerAuth(token_provider, before_retry, token_rejected) if token_provider is not None else None
        http = VendorHttp(
            base_url,
            policy,
            budget,
            rseries_observation,
            headers={} if auth is not None else {"Authorization": f"Bearer {token}"},
            auth=auth,
            max_wait_s=max_wait_s,
            client=client,
            transport=transport,
            max_retries=max_retries,
            backoff_s=backoff_s,
            clock=clock,
            sleep=sleep,
            request_cost=rseries_request_cost,
        )
        self.http = http

    @property
    def calls(self) -> int:
        return self.http.calls

    def close(self) -> None:
        self.http.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def _base(self) -> str:
        return f"/API/V3/Account/{self.get_account_id()}"

    def _list(self, entity: str, params: Mapping[str, str | int | None]) -> Page:
        body = self.http.json("GET", f"{self._base()}/{entity}.json", params=dict(params))
        return Page(envelope.rows(body, entity), envelope.next_url(body))

    def _walk(self, entity: str, params: Mapping[str, str | int | None]) -> Iterator[JsonObject]:
        page = self._list(entity, {"limit": MAX_LIMIT, **params})
        for _ in range(MAX_PAGES):
            yield from page.rows
            if page.next_url is None:
                return
            page = self.next_page(entity, page.next_url)

    def _single(self, entity: str, entity_id: str | int, relations: Sequence[str] = ()) -> JsonObject | None:
        body = self.http.json(
            "GET",
            f"{self._base()}/{entity}/{_segment(_id(entity_id))}.json",
            params={"load_relations": _relations(relations)},
            absent_ok=True,
        )
        return envelope.single(body, entity) if body is not None else None

    def _write(self, method: str, path: str, entity: str, body: JsonObject) -> JsonObject:
        answer = self.http.json(method, path, json=body)
        record = envelope.single(answer, entity)
        if record is None:
            raise UpstreamError("rseries", 200, f"{entity} answer without {entity}", method, path)
        return record

    # -- account and reference data -------------------------------------------------------------------

    def get_account_id(self) -> str:
        """The account the token serves: the connection's, else the first of `GET /API/V3/Account.json`
        (KVH endpoints/account.md: "the first thing you will need is your accountID")."""
        if self._account_id is None:
            accounts = envelope.rows(self.http.json("GET", "/API/V3/Account.json"), "Account")
            found = envelope.reference(accounts[0].get("accountID")) if accounts else None
            if found is None or not found.isdigit():
                raise ConfigurationError("rseries: the access token serves no account (GET /API/V3/Account.json)")
            self._account_id = found
        return self._account_id

    def list_shops(self) -> list[JsonObject]:
        """Every shop, archived ones included (KVH endpoints/shop.md; seed 002 locations = shops)."""
        return list(self._walk("Shop", {"archived": "true"}))

    def list_registers(self) -> list[JsonObject]:
        """Every register (KVH endpoints/register.md: `registerID`, `shopID`)."""
        return list(self._walk("Register", {}))

    def list_payment_types(self) -> list[JsonObject]:
        """Every payment type (KVH endpoints/paymenttype.md: `paymentTypeID`, `name`, `type`)."""
        return list(self._walk("PaymentType", {}))

    def list_price_levels(self) -> list[JsonObject]:
        """Every price level (KVH endpoints/pricelevel.md: `priceLevelID`, `name`, `archived`)."""
        return list(self._walk("PriceLevel", {}))

    def find_price_level(self, name: str) -> JsonObject | None:
        """The live price level called `name` (case-insensitive), e.g. "Online": its id differs per account (KVH
        item.md samples 3, tutorials/item-matrices.md 5; MKP price_levels/index.yml 4), so it is resolved by name;
        None when the account has none (the caller then uses Default)."""
        wanted = name.strip().casefold()
        for level in self.list_price_levels():
            if str(level.get("name", "")).strip().casefold() == wanted and not envelope.flag(level.get("archived")):
                return level
        return None

    def list_categories(self) -> list[JsonObject]:
        """Every category (KVH endpoints/category.md: `categoryID`, `name`, `fullPathName`, `parentID`)."""
        return list(self._walk("Category", {}))

    def list_manufacturers(self) -> list[JsonObject]:
        """Every manufacturer, the eCom brand (KVH endpoints/manufacturer.md: `manufacturerID`, `name`)."""
        return list(self._walk("Manufacturer", {}))

    def find_manufacturer(self, name: str) -> JsonObject | None:
        """The manufacturer called `name` (case-insensitive, spaces trimmed), None when there is none:
        `Manufacturer.json?name=<name>` (KVH manufacturer.md fields; query-parameters.md `=`), matched again here;
        whether the vendor's `=` is case-sensitive is undocumented, so a miss walks the whole list once."""
        wanted = name.strip().casefold()

        def match(rows: Iterator[JsonObject]) -> JsonObject | None:
            return next((row for row in rows if str(row.get("name", "")).strip().casefold() == wanted), None)

        return match(self._walk("Manufacturer", {"name": name.strip()})) or match(self._walk("Manufacturer", {}))

    def create_manufacturer(self, name: str) -> JsonObject:
        """`POST Manufacturer.json {"name"}` (KVH manufacturer.md "POST Create a manufacturer"); the new row."""
        return self._write("POST", f"{self._base()}/Manufacturer.json", "Manufacturer", {"name": name.strip()})

    # -- change feeds ---------------------------------------------------------------------------------

    def list_changes(self, entity: str, since: int | None, limit: int = MAX_LIMIT) -> Page:
        """The first page of `entity` rows stamped at or after `since` (epoch seconds; None: from the beginning),
        oldest first, archived rows included: `GET <Entity>.json?sort=timeStamp&timeStamp=>=,<stamp>
        &archived=true&limit=` (KVH endpoints/itemshop.md "efficiently poll for changes ... sort=timeStamp&timeStamp=
        %3E%3D%2C{LastPollTime}"; query-parameters.md operators and `archived`; Sale by `updatetime`, sale.md)."""
        spec = FEED_ENTITIES.get(entity)
        if spec is None:
            raise ValueError(f"not an R-Series change feed: {entity!r}")
        params: dict[str, str | int | None] = {
            "sort": spec.stamp_field,
            spec.stamp_field: None if since is None else f">=,{envelope.query_stamp(since)}",
            "archived": "true" if spec.archivable else None,
            "archive": 1 if spec.archive_param else None,
            "load_relations": _relations(spec.relations),
            "limit": max(1, min(int(limit), MAX_LIMIT)),
        }
        return self._list(entity, params)

    def next_page(self, entity: str, url: str) -> Page:
        """The page at a `@attributes.next` URL, sent verbatim (KVH pagination.md); a URL on another origin than
        the API's is refused (our bearer token goes to the API only)."""
        target, base = urlsplit(url), urlsplit(self.http.base_url)
        if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise UpstreamError("rseries", 200, "next page URL on another origin", "GET", target.path)
        path = target.path + (f"?{target.query}" if target.query else "")
        body = self.http.json("GET", path)
        return Page(envelope.rows(body, entity), envelope.next_url(body))

    def list_using(
        self, entity: str, field: str, reference_id: str, *, after_id: str | None = None, limit: int = MAX_LIMIT
    ) -> Page:
        """One page of the live families whose category or manufacturer is `reference_id`, by id after `after_id`:
        simple items (`Item.json?<field>=<id>&itemMatrixID=0&sort=itemID&itemID=>,<after>`: a variant's family takes
        its matrix's category and brand) or matrices (`ItemMatrix.json?<field>=<id>&sort=itemMatrixID&itemMatrixID=>,
        <after>`). KVH item.md / itemmatrix.md fields and Sortable Fields, query-parameters.md operators. No sample
        shows these filters (contract `unverified`): callers check every row's `field` again."""
        id_field = USING_LISTS.get(entity)
        if id_field is None or field not in USING_FIELDS:
            raise ValueError(f"no R-Series list of {entity} by {field}")
        params: dict[str, str | int | None] = {
            field: _id(reference_id),
            "itemMatrixID": "0" if entity == "Item" else None,
            "sort": id_field,
            id_field: None if after_id is None else f">,{_id(after_id)}",
            "limit": max(1, min(int(limit), MAX_LIMIT)),
        }
        return self._list(entity, params)

    # -- items, matrices, stock -----------------------------------------------------------------------

    def get_item(self, item_id: str | int, relations: Sequence[str] = ()) -> JsonObject | None:
        """One item, archived or not (KVH endpoints/item.md "GET Single item"; relations e.g. `ItemShops`,
        `ItemAttributes`, `Images`); None when it does not exist."""
        return self._single("Item", item_id, relations)

    def get_items(self, item_ids: Sequence[str | int], relations: Sequence[str] = ()) -> list[JsonObject]:
        """The items with these ids, archived ones included (`Item.json?itemID=IN,[...]`, KVH query-parameters.md;
        100 ids per call)."""
        found: list[JsonObject] = []
        for chunk in _chunks(item_ids, MAX_IN_VALUES):
            found += self._walk(
                "Item", {"itemID": _in(chunk), "archived": "true", "load_relations": _relations(relations)}
            )
        return found

    def list_matrix_items(self, matrix_id: str | int, relations: Sequence[str] = ()) -> list[JsonObject]:
        """A matrix's variant items, archived ones included (`Item.json?itemMatrixID=`, KVH item.md fields and
        tutorials/item-matrices.md)."""
        return list(
            self._walk(
                "Item", {"itemMatrixID": _id(matrix_id), "archived": "true", "load_relations": _relations(relations)}
            )
        )

    def get_matrix(self, matrix_id: str | int, relations: Sequence[str] = ()) -> JsonObject | None:
        """One item matrix, the "Matrix Master" (KVH endpoints/itemmatrix.md "GET Single"); None when absent."""
        return self._single("ItemMatrix", matrix_id, relations)

    def list_item_shops(self, item_ids: Sequence[str | int]) -> list[JsonObject]:
        """The ItemShop rows of these items, the shopID "0" all-shops row included (`ItemShop.json?itemID=IN,[..]`,
        KVH endpoints/itemshop.md; callers skip shopID "0" when summing)."""
        found: list[JsonObject] = []
        for chunk in _chunks(item_ids, MAX_IN_VALUES):
            found += self._walk("ItemShop", {"itemID": _in(chunk)})
        return found

    def find_items_by_code(self, code: str) -> list[JsonObject]:
        """Items whose itemID, UPC or EAN is `code` (`Item.json?itemCode=`, KVH item.md "GET/Read": itemCode
        "matches the UPC or EAN code, or itemID"), archived ones included."""
        return list(self._walk("Item", {"itemCode": code, "archived": "true"}))

    def find_items_by_sku(self, custom_sku: str) -> list[JsonObject]:
        """Items whose `customSku` is exactly `custom_sku` (KVH item.md fields; filtered again here: the vendor's
        comparison rules are not documented), archived ones included."""
        rows = self._walk("Item", {"customSku": custom_sku, "archived": "true"})
        return [row for row in rows if row.get("customSku") == custom_sku]

    def update_item(self, item_id: str | int, fields: JsonObject) -> JsonObject:
        """`PUT Item/{itemID}.json` with the fields to change (KVH item.md PUT: description, categoryID,
        manufacturerID, customSku, upc, ean, manufacturerSku, `Prices`...); the updated item. Never sends
        `archived: true` (KVH item.md: archive with DELETE only)."""
        if envelope.flag(fields.get("archived")):
            raise ValueError("an item is archived with DELETE, never by PUT archived=true (KVH item.md)")
        return self._write("PUT", f"{self._base()}/Item/{_segment(_id(item_id))}.json", "Item", fields)

    def update_matrix(self, matrix_id: str | int, fields: JsonObject) -> JsonObject:
        """`PUT ItemMatrix/{itemMatrixID}.json` with the fields to change (KVH endpoints/itemmatrix.md PUT:
        description, categoryID, manufacturerID, ...); the updated matrix."""
        return self._write("PUT", f"{self._base()}/ItemMatrix/{_segment(_id(matrix_id))}.json", "ItemMatrix", fields)

    def set_item_price(self, item_id: str | int, price_level_id: str, amount: Decimal) -> JsonObject:
        """Set one price level of an item (the Online price, seed 000) and leave the others as they are: whether a
        PUT with one ItemPrice keeps the other levels is undocumented (contract `unverified`), so every level the
        item has is sent again with this one changed (read, then `PUT Prices.ItemPrice`)."""
        item = self.get_item(item_id)
        if item is None:
            raise UpstreamError("rseries", 404, "item not found", "GET", f"Item/{item_id}")
        levels = envelope.prices(item)
        levels[_id(price_level_id)] = amount
        return self.update_item(item_id, price_levels_body(levels))

    # -- customers ------------------------------------------------------------------------------------

    def find_customers_by_email(self, email: str) -> list[JsonObject]:
        """Customers with a ContactEmail `email` (`Customer.json?load_relations=["Contact"]&Contact.email=`, KVH
        tutorials/searching.md; relations.md: the searched relation must be loaded), matched again here
        case-insensitively on every address. Whether the vendor compares case-insensitively is not documented, so an
        address with capitals that finds nothing is asked again in lower case."""
        wanted = email.strip()
        tries = list(dict.fromkeys([wanted, wanted.lower()]))
        for value in tries:
            rows = self._walk("Customer", {"load_relations": _relations(["Contact"]), "Contact.email": value})
            found = [row for row in rows if wanted.casefold() in _emails(row)]
            if found:
                return found
        return []

    def create_customer(self, first_name: str, last_name: str, email: str) -> JsonObject:
        """`POST Customer.json` with the Contact relation written inline (KVH endpoints/customer.md POST; relations.md
        "Writing to Relations": `Contact.Emails.ContactEmail{address, useType}`)."""
        body = {
            "firstName": first_name,
            "lastName": last_name,
            "Contact": {"Emails": {"ContactEmail": {"address": email, "useType": "Primary"}}},
        }
        return self._write("POST", f"{self._base()}/Customer.json", "Customer", body)

    # -- sales ----------------------------------------------------------------------------------------

    def create_sale(self, sale: JsonObject) -> JsonObject:
        """`POST Sale.json` (KVH endpoints/sale.md, tutorials/sales.md): `shopID`, `registerID`, `employeeID`,
        `customerID`, `completed`, `referenceNumber` + `referenceNumberSource` (how the sale is found again),
        `SaleLines.SaleLine[{itemID, unitQuantity, unitPrice}]`, `SalePayments.SalePayment[{paymentTypeID, amount,
        remoteReference}]` (KVH salepayment.md: "optional client-generated unique identifier"). Costs 2 drips, +3
        when completed, +0.5 per line and payment. Never resent once it may have reached the vendor: callers look
        the sale up with `find_sale_by_reference` first."""
        return self._write("POST", f"{self._base()}/Sale.json", "Sale", sale)

    def find_sale_by_reference(self, reference: str, source: str) -> JsonObject | None:
        """The sale an external system created with this `referenceNumber` and `referenceNumberSource` (KVH sale.md
        fields), with its lines and payments; archived ones included; None when there is none."""
        rows = self._walk(
            "Sale",
            {
                "referenceNumber": reference,
                "referenceNumberSource": source,
                "archived": "true",
                "load_relations": _relations(["SaleLines", "SalePayments"]),
            },
        )
        for row in rows:  # filtered again: the vendor's string comparison rules are not documented
            if row.get("referenceNumber") == reference and row.get("referenceNumberSource") == source:
                return row
        return None

    def get_sale(self, sale_id: str | int) -> JsonObject | None:
        """One sale with its lines and payments (KVH sale.md "GET Single sale"); None when absent."""
        return self._single("Sale", sale_id, ["SaleLines", "SalePayments"])

    def update_sale(self, sale_id: str | int, fields: JsonObject) -> JsonObject:
        """`PUT Sale/{saleID}.json` with the fields to change (KVH sale.md "PUT Update a sale"; tutorials/sales.md):
        e.g. `voided`, or `SalePayments` + `completed` to pay an open sale. Costs 2 drips, +3 when completing. The
        updated sale; whether the change took is the caller's to check on it (a void by PUT is undocumented)."""
        return self._write("PUT", f"{self._base()}/Sale/{_segment(_id(sale_id))}.json", "Sale", fields)

    def get_sale_lines(self, line_ids: Sequence[str | int]) -> list[JsonObject]:
        """The SaleLines with these ids, whichever sale they are on (`SaleLine.json?saleLineID=IN,[...]`, KVH
        endpoints/saleline.md GET All, query-parameters.md `IN`; 100 ids per call). Each names its `saleID` and
        `itemID`: how a refund line's `parentSaleLineID` leads to the sale it refunds."""
        found: list[JsonObject] = []
        for chunk in _chunks(line_ids, MAX_IN_VALUES):
            found += self._walk("SaleLine", {"saleLineID": _in(chunk)})
        return found


def _emails(customer: Mapping[str, Any]) -> set[str]:
    contact = customer.get("Contact")
    if not isinstance(contact, dict):
        return set()
    return {
        str(entry.get("address", "")).strip().casefold()
        for entry in envelope.relation(contact, "Emails", "ContactEmail")
    }


def client_for_secrets(
    base_url: str,
    account_id: str | None,
    secrets: ApiSecrets,
    budget: RateBudget,
    token_store: Callable[[], TokenPairStore],
    *,
    max_wait_s: float,
) -> RSeriesClient:
    """The client a connection's secrets authorize: its OAuth app's rotating pair (`pos_client_id`,
    `pos_client_secret`, `pos_refresh_token`; `pos_access_token` the optional first access token), refreshed through
    `token_store()` (one refresher per connection across every invocation). An access token alone is used as is
    (it expires within the hour: development only)."""
    if not secrets.pos_uses_oauth:
        assert secrets.pos_access_token is not None  # the secrets model requires one or the other
        token = secrets.pos_access_token.get_secret_value()
        return RSeriesClient(base_url, budget, account_id=account_id, token=token, max_wait_s=max_wait_s)
    assert secrets.pos_client_id and secrets.pos_client_secret and secrets.pos_refresh_token
    tokens = RSeriesTokens(
        base_url,
        secrets.pos_client_id.get_secret_value(),
        secrets.pos_client_secret.get_secret_value(),
        secrets.pos_refresh_token.get_secret_value(),
        token_store(),
        access_token=secrets.pos_access_token.get_secret_value() if secrets.pos_access_token else None,
    )
    return RSeriesClient(base_url, budget, account_id=account_id, token_provider=tokens, max_wait_s=max_wait_s)
