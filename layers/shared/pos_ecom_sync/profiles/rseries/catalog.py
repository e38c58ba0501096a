"""The R-Series catalog as the catalog worker reads it (`catalog.sync.PosCatalog`) and as reconciliation walks it
(`reconcile.service.PosCatalogFeed`).

A family is read from its key (`m<itemMatrixID>` or a simple item's `itemID`, `feeds.family_key`) or from any item
id (a variant's names its matrix): a matrix costs two calls, `GET ItemMatrix/{id}.json?load_relations=["Images",
"ItemAttributeSet"]` and `GET Item.json?itemMatrixID=<id>&archived=true&load_relations=["ItemAttributes","Images"]`
(KVH endpoints/itemmatrix.md, item.md, relations.md), plus one `GET Item/{id}.json` when asked by a variant's id; a
simple item one. The family's category and manufacturer (brand) names come with the matrix or simple item read
(`load_relations` "Category", "Manufacturer": to-one, +0.1 drip each, KVH relations.md), never from a kept list: a
rename reaches eCom through the Category / Manufacturer feeds (`category_feeds`), whose messages must find the new
name at once. The Online price level is a reference list kept for a few minutes per warm sandbox (`ReferenceCache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from pos_ecom_sync.catalog.ecom_edits import PosEdit
from pos_ecom_sync.errors import ConfigurationError, InvalidInput
from pos_ecom_sync.models.catalog import FamilyRow, PosFamily
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import ChangePage
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.category_edits import set_family_category
from pos_ecom_sync.profiles.rseries.client import Page
from pos_ecom_sync.profiles.rseries.feeds import FEEDS, MATRIX_PREFIX, StampFeedReader, family_key
from pos_ecom_sync.profiles.rseries.mapping import MAX_ATTRIBUTES, is_archived, left_out, matrix_family, simple_family
from pos_ecom_sync.reference import ReferenceCache

JsonObject = dict[str, Any]
ONLINE_LEVEL_NAME = "Online"  # seed 000 "Online price"; its id differs per account (rseries.md §6)
ITEM_RELATIONS = ("ItemAttributes", "Images")
MATRIX_RELATIONS = ("Images", "ItemAttributeSet")
# Read with the family's own row (matrix or simple item), never with the variants listed (doubled on queries).
NAMED_RELATIONS = ("Category", "Manufacturer")
NO_MANUFACTURER = "0"  # KVH itemmatrix.md POST/PUT samples: "manufacturerID": "0"
# Shared by the catalog readers of a warm sandbox (keys name the connection and the POS account).
_REFERENCE = ReferenceCache()


class CatalogReads(Protocol):
    """What the catalog needs from `client.RSeriesClient`."""

    @property
    def calls(self) -> int: ...
    def get_item(self, item_id: str | int, relations: Sequence[str] = ()) -> JsonObject | None: ...
    def get_matrix(self, matrix_id: str | int, relations: Sequence[str] = ()) -> JsonObject | None: ...
    def list_matrix_items(self, matrix_id: str | int, relations: Sequence[str] = ()) -> list[JsonObject]: ...
    def find_manufacturer(self, name: str) -> JsonObject | None: ...
    def list_categories(self) -> list[JsonObject]: ...
    def create_manufacturer(self, name: str) -> JsonObject: ...
    def find_price_level(self, name: str) -> JsonObject | None: ...
    def update_item(self, item_id: str | int, fields: JsonObject) -> JsonObject: ...
    def update_matrix(self, matrix_id: str | int, fields: JsonObject) -> JsonObject: ...
    def set_item_price(self, item_id: str | int, price_level_id: str, amount: Decimal) -> JsonObject: ...


class RSeriesCatalog:
    def __init__(self, client: CatalogReads, connection: Connection, reference: ReferenceCache | None = None) -> None:
        self.client = client
        self.connection = connection
        self.reference = reference if reference is not None else _REFERENCE

    @property
    def calls(self) -> int:
        return self.client.calls

    def read_family(self, product_id: str) -> PosFamily | None:
        key = product_id.strip()
        if key.startswith(MATRIX_PREFIX) and key[len(MATRIX_PREFIX) :].isdigit():
            return self._matrix(key[len(MATRIX_PREFIX) :])
        if not key.isdigit():
            return None  # no R-Series id
        item = self.client.get_item(key, ITEM_RELATIONS + NAMED_RELATIONS)
        if item is None:
            return None
        matrix_id = envelope.reference(item.get("itemMatrixID"))
        if matrix_id is not None:
            return self._matrix(matrix_id)
        return simple_family(
            item,
            online_level_id=self._online_level_id(),
            categories=_named(item, "Category", "categoryID"),
            brands=_named(item, "Manufacturer", "manufacturerID"),
        )

    def apply_edits(self, family_key: str, edits: Sequence[PosEdit]) -> None:
        """The merchant's eCom edits into R-Series (seed 000, two-way): the product name is the `description` of
        the simple item (`PUT Item/{id}`) or of the Matrix Master (`PUT ItemMatrix/{id}`, which renames its variant
        items too, KVH itemmatrix.md); SKU -> `customSku`, EAN -> `ean` (`PUT Item/{id}`, KVH item.md PUT); the
        price -> the item's **Online** price level, never Default (`set_item_price`: every level the item has is
        sent again with Online changed, since whether a PUT with one ItemPrice keeps the others is undocumented);
        the brand -> the family's `manufacturerID` (the matrix's or simple item's, as `mapping` reads it): the
        manufacturer of that name (`find_manufacturer`), created when the account has none (`POST Manufacturer`,
        KVH manufacturer.md), "0" for no brand; a variant's option values -> its `ItemAttributes` (`_attribute_bodies`).
        One PUT per item (or matrix) for its fields, plus one read and one PUT for a price, one or two reads (and a
        POST) for a brand, one read of the matrix's items for option values."""
        fields: dict[str, JsonObject] = {}
        matrix: dict[str, JsonObject] = {}
        prices: dict[str, float] = {}
        options: dict[str, tuple[str, ...]] = {}
        for edit in edits:
            if edit.field in ("name", "brand"):
                key = edit.item_id
                name, value = (
                    ("description", str(edit.value))
                    if edit.field == "name"
                    else ("manufacturerID", self._manufacturer_id(str(edit.value)))
                )
                if key.startswith(MATRIX_PREFIX):
                    matrix.setdefault(_digits(key[len(MATRIX_PREFIX) :]), {})[name] = value
                else:
                    fields.setdefault(_digits(key), {})[name] = value
            elif edit.field == "sku":
                fields.setdefault(_digits(edit.item_id), {})["customSku"] = str(edit.value)
            elif edit.field == "ean":
                fields.setdefault(_digits(edit.item_id), {})["ean"] = str(edit.value)
            elif edit.field == "online_price" and isinstance(edit.value, int | float):
                prices[_digits(edit.item_id)] = float(edit.value)
            elif edit.field == "options" and isinstance(edit.value, tuple):
                options[_digits(edit.item_id)] = edit.value
        for item_id, attributes in self._attribute_bodies(family_key, options).items():
            fields.setdefault(item_id, {})["ItemAttributes"] = attributes
        for matrix_id, changes in matrix.items():
            self.client.update_matrix(matrix_id, changes)
        for item_id, changes in fields.items():
            self.client.update_item(item_id, changes)
        if prices:
            level = self._online_level_id()
            if level is None:
                raise ConfigurationError(
                    f"the R-Series account has no {ONLINE_LEVEL_NAME!r} price level: an eCom price edit cannot "
                    f"become the Online price (seed 000); create the level in R-Series (family {family_key})"
                )
            for item_id, amount in prices.items():
                # At most 5 decimals (as the sync keeps prices); repr keeps 12.5 as "12.5", not 12.4999...
                self.client.set_item_price(item_id, level, Decimal(repr(round(amount, 5))))

    def _attribute_bodies(self, family_key: str, values: dict[str, tuple[str, ...]]) -> dict[str, JsonObject]:
        """Variant item id -> the `ItemAttributes` to PUT so it holds these option values. KVH item.md lists
        `ItemAttributes` ("Matrix attributes for this item") among the PUT attributes; its shape `{itemAttributeSetID,
        attribute1, attribute2, attribute3}` is the one tutorials/item-matrices.md POSTs. The values fill the item's
        non-empty attributes in order (as `mapping.item_options` reads them); the whole object is sent, since whether
        a PUT keeps the attributes it leaves out is undocumented. One read of the matrix's items gives the slots and,
        fresh, the other variants' values: values another live item of the matrix holds are refused before any PUT
        (`InvalidInput`, dead-lettered with the reason) [whether R-Series refuses them itself is undocumented]."""
        if not values:
            return {}
        if not family_key.startswith(MATRIX_PREFIX):
            raise InvalidInput(f"option values for item(s) {', '.join(sorted(values))}: {family_key} is no matrix")
        matrix_id = _digits(family_key[len(MATRIX_PREFIX) :])
        rows = self.client.list_matrix_items(matrix_id, ("ItemAttributes",))
        held: dict[str, list[str]] = {}
        set_ids: dict[str, str] = {}
        for row in rows:
            item_id, attributes = envelope.reference(row.get("itemID")), row.get("ItemAttributes")
            if item_id is not None and isinstance(attributes, dict) and not is_archived(row):
                held[item_id] = [_attribute(attributes, n) for n in range(1, MAX_ATTRIBUTES + 1)]
                set_ids[item_id] = str(envelope.reference(attributes.get("itemAttributeSetID")) or "")
        bodies: dict[str, JsonObject] = {}
        for item_id, new in sorted(values.items()):
            current = held.get(item_id)
            if current is None:
                raise InvalidInput(f"R-Series item {item_id} is no live variant of matrix {matrix_id}")
            slots = [n for n, value in enumerate(current) if value]
            if len(slots) != len(new):
                raise InvalidInput(
                    f"R-Series item {item_id} has {len(slots)} attribute values, the eCom edit {len(new)}: {new!r}"
                )
            for n, value in zip(slots, new, strict=True):
                current[n] = value
            body: JsonObject = {"itemAttributeSetID": set_ids[item_id]} if set_ids[item_id] else {}
            bodies[item_id] = body | {f"attribute{n + 1}": value for n, value in enumerate(current)}
        for item_id in bodies:
            mine = [value.casefold() for value in held[item_id]]
            other = next((o for o, v in held.items() if o != item_id and [x.casefold() for x in v] == mine), None)
            if other is not None:
                raise InvalidInput(
                    f"R-Series item {item_id} not given attribute values {held[item_id]!r}: item {other} of matrix "
                    f"{matrix_id} has them (a matrix holds each combination once)"
                )
        return bodies

    def set_category(self, family_key: str, category: str) -> bool:
        """A merchant's eCom category link: the family's parent into the Category of that name, never created
        (`category_edits.set_family_category`)."""
        return set_family_category(self.client, family_key, category)

    def _manufacturer_id(self, name: str) -> str:
        """The id of the manufacturer called `name` (created when missing); "0" for none."""
        if not name.strip():
            return NO_MANUFACTURER
        found = self.client.find_manufacturer(name) or self.client.create_manufacturer(name)
        maker_id = envelope.reference(found.get("manufacturerID"))
        if maker_id is None or not maker_id.isdigit():
            raise InvalidInput(f"R-Series manufacturer {name[:40]!r} without a readable manufacturerID")
        return maker_id

    def _matrix(self, matrix_id: str) -> PosFamily | None:
        matrix = self.client.get_matrix(matrix_id, MATRIX_RELATIONS + NAMED_RELATIONS)
        if matrix is None:
            return None
        items = self.client.list_matrix_items(matrix_id, ITEM_RELATIONS)
        return matrix_family(
            matrix,
            items,
            online_level_id=self._online_level_id(),
            categories=_named(matrix, "Category", "categoryID"),
            brands=_named(matrix, "Manufacturer", "manufacturerID"),
        )

    def _key(self, kind: str) -> str:
        account = self.connection.pos_account_id or ""
        return f"{self.connection.connection_id}|{self.connection.pos_base_url}|{account}|rseries:{kind}"

    def _online_level_id(self) -> str | None:
        """The Online price level's id, resolved by name (`find_price_level`), kept like the other lists."""
        key = self._key("online-price-level")

        def load() -> list[JsonObject]:
            level = self.client.find_price_level(ONLINE_LEVEL_NAME)
            return [level] if level is not None else []

        levels = self.reference.get(key, load)
        return envelope.reference(levels[0].get("priceLevelID")) if levels else None


def _attribute(attributes: JsonObject, n: int) -> str:
    value = attributes.get(f"attribute{n}")
    return value.strip() if isinstance(value, str) else ""


def _digits(item_id: str) -> str:
    if not item_id.isdigit():
        raise InvalidInput(f"not an R-Series item id: {item_id[:40]!r}")
    return item_id


def _named(row: JsonObject, relation: str, id_field: str) -> dict[str, str]:
    """id -> name of the row's loaded Category or Manufacturer (empty when it has none: `"0"`, the relation absent or
    `""`), for `mapping` to look the row's own foreign key up in."""
    related = row.get(relation)
    if not isinstance(related, dict):
        return {}
    related_id, name = envelope.reference(related.get(id_field)), related.get("name")
    if related_id is None or related_id != envelope.reference(row.get(id_field)) or not isinstance(name, str):
        return {}
    return {related_id: name.strip()} if name.strip() else {}


def family_row(row: JsonObject) -> FamilyRow:
    """What the catalog compare reads of an Item row: its family, id, stamp and whether it is out of eCom (archived
    or not published); InvalidInput when its ids cannot be read."""
    key = family_key(row)
    item_id = envelope.reference(row.get("itemID")) or ""
    return FamilyRow(key, item_id, envelope.epoch(row.get("timeStamp")), left_out(row))


class ItemLists(Protocol):
    @property
    def calls(self) -> int: ...
    def list_changes(self, entity: str, since: int | None, limit: int = ...) -> Page: ...
    def next_page(self, entity: str, url: str) -> Page: ...


_ITEM_FEED = next(spec for spec in FEEDS if spec.entity == "Item")


class RSeriesCatalogWalk:
    """Every Item row by timeStamp, archived ones included (`GET Item.json?sort=timeStamp&timeStamp=>=,<s>
    &archived=true`, KVH query-parameters.md), read like the `pos:Item` feed (`feeds.StampFeedReader`: the vendor's
    next URLs within a walk, an opaque stamp cursor, rows sharing a second never lost). Matrix rows are not walked:
    a matrix family's stamp is its newest row's, and the simulator (like the vendor [I]) restamps variants when
    their matrix changes."""

    def __init__(self, client: ItemLists) -> None:
        self.client = client
        self._readers: dict[int, StampFeedReader] = {}  # by page size: one walk keeps one

    @property
    def calls(self) -> int:
        return self.client.calls

    def catalog_page(self, cursor: str | None, page_size: int) -> ChangePage:
        reader = self._readers.setdefault(page_size, StampFeedReader(self.client, _ITEM_FEED, page_size))
        return reader(cursor)

    def family_row(self, row: JsonObject) -> FamilyRow:
        return family_row(row)

    def row_name(self, row: JsonObject) -> tuple[Any, Any]:
        return row.get("itemID"), row.get("timeStamp")
