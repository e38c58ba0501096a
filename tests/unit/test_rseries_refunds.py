"""R-Series refunds read as returns, without I/O: a refund Sale (lines with a negative `unitQuantity` and a
`parentSaleLineID`, KVH sale-refund.md / saleline.md) becomes a `PosSale` returning the sale its parent lines are on,
with the units it took back per item, so the domain's return rules (`completed_return`, `returned_quantities`) credit
the eCom order as they do an X-Series return; and the profile reads those parent lines once per refund."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.sales import SaleState
from pos_ecom_sync.profiles.rseries.sales import (
    ParentLine,
    parent_line_of,
    refund_parents,
    sale_of_row,
)
from pos_ecom_sync.profiles.rseries.status import RSeriesSales
from pos_ecom_sync.reference import ReferenceCache
from pos_ecom_sync.status.rules import completed_return, returned_quantities

ONLINE_SALE, TILL_SALE = "120", "130"
TEE, CAP, SHIPPING = "41", "42", "90"
PARENTS = {
    "1001": ParentLine("1001", ONLINE_SALE, TEE),
    "1002": ParentLine("1002", ONLINE_SALE, CAP),
    "1003": ParentLine("1003", ONLINE_SALE, SHIPPING),
    "2001": ParentLine("2001", TILL_SALE, TEE),
}


def line(line_id: str, item: str, quantity: str, parent: str = "0") -> dict[str, str]:
    return {"saleLineID": line_id, "itemID": item, "unitQuantity": quantity, "parentSaleLineID": parent}


def refund(*lines: dict[str, str], completed: str = "true", **fields: str) -> dict[str, Any]:
    """A refund Sale row as `GET Sale/{id}.json?load_relations=["SaleLines","SalePayments"]` answers it."""
    rows: Any = list(lines) if len(lines) != 1 else lines[0]  # one line comes as an object (KVH relations)
    return {
        "saleID": "150",
        "completed": completed,
        "voided": "false",
        "archived": "false",
        "total": "-69",
        "referenceNumber": "",
        "referenceNumberSource": "",
        "SaleLines": {"SaleLine": rows},
        "SalePayments": {"SalePayment": {"amount": "-69", "paymentTypeID": "3", "archived": "false"}},
        **fields,
    }


def test_a_full_refund_returns_the_sale_its_parent_lines_are_on_with_every_unit_per_item() -> None:
    row = refund(line("1501", TEE, "-2", "1001"), line("1502", CAP, "-1", "1002"), line("1503", SHIPPING, "-1", "1003"))

    sale = sale_of_row(row, PARENTS)

    assert sale.return_for == ONLINE_SALE
    assert completed_return(sale) and sale.state == SaleState.CLOSED
    assert returned_quantities(sale) == {TEE: 2, CAP: 1, SHIPPING: 1}  # the domain skips the shipping item itself
    assert sale.paid == Decimal(-69)


def test_a_partial_refund_returns_only_the_units_it_took_back() -> None:
    sale = sale_of_row(refund(line("1501", TEE, "-1", "1001")), PARENTS)

    assert (sale.return_for, returned_quantities(sale)) == (ONLINE_SALE, {TEE: 1})


def test_an_open_refund_returns_the_sale_but_took_nothing_back_yet_and_a_voided_one_never_will() -> None:
    parked = sale_of_row(refund(line("1501", TEE, "-1", "1001"), completed="false"), PARENTS)
    voided = sale_of_row(refund(line("1501", TEE, "-1", "1001"), voided="true"), PARENTS)

    assert parked.return_for == voided.return_for == ONLINE_SALE
    assert not completed_return(parked) and not completed_return(voided)


def test_a_refund_whose_parent_lines_are_not_read_is_nobodys_sale_even_with_the_orders_reference() -> None:
    # Whether a refund copies the original's referenceNumber is undocumented: if it does, it must still never read
    # as the imported sale itself (its negative total would look "paid" and its lines sold).
    copied = refund(line("1501", TEE, "-1", "1001"), referenceNumber="ecom-5501042", referenceNumberSource="eCom")

    sale = sale_of_row(copied)

    assert sale.return_for is None and sale.reference is None
    assert sale_of_row(copied, PARENTS).reference is None


def test_a_refund_line_naming_no_item_takes_back_its_parent_lines_item() -> None:
    sale = sale_of_row(refund(line("1501", "0", "-2", "1001")), PARENTS)

    assert returned_quantities(sale) == {TEE: 2}


def test_a_refund_of_lines_of_two_sales_returns_the_first_lines_sale_with_only_its_lines() -> None:
    row = refund(line("1501", TEE, "-1", "2001"), line("1502", TEE, "-1", "1001"), line("1503", CAP, "-1", "1002"))

    sale = sale_of_row(row, PARENTS)

    assert (sale.return_for, returned_quantities(sale)) == (TILL_SALE, {TEE: 1})


def test_a_return_without_a_receipt_and_a_plain_sale_return_no_sale_and_keep_their_reference() -> None:
    no_receipt = refund(line("1501", TEE, "-1"), referenceNumber="till-7", referenceNumberSource="Till")
    sold = refund(line("1501", TEE, "2", "1001"), referenceNumber="ecom-5501042", referenceNumberSource="eCom")

    assert refund_parents(no_receipt) == refund_parents(sold) == ()
    assert (sale_of_row(no_receipt, PARENTS).return_for, sale_of_row(no_receipt).reference) == (None, "Till:till-7")
    assert (sale_of_row(sold).return_for, sale_of_row(sold).reference) == (None, "ecom-5501042")


def test_refund_parents_names_each_parent_once_in_line_order_and_skips_lines_that_refund_nothing() -> None:
    row = refund(
        line("1501", TEE, "-1", "1002"),
        line("1502", TEE, "-1", "1001"),
        line("1503", TEE, "-1", "1002"),
        line("1504", CAP, "1", "1003"),  # a positive line (an exchange's new item) refunds nothing
        line("1505", CAP, "-1", "0"),
    )

    assert refund_parents(row) == ("1002", "1001")
    assert refund_parents({"saleID": "7", "SaleLines": ""}) == ()


def test_a_sale_line_row_names_its_sale_and_item_and_a_row_without_a_sale_is_no_parent() -> None:
    row = {"saleLineID": "1001", "saleID": ONLINE_SALE, "itemID": TEE, "unitQuantity": "2", "parentSaleLineID": "0"}

    assert parent_line_of(row) == ParentLine("1001", ONLINE_SALE, TEE)
    assert parent_line_of({**row, "itemID": "0"}) == ParentLine("1001", ONLINE_SALE, None)
    assert parent_line_of({**row, "saleID": "0"}) is None


# -- the profile's reads ------------------------------------------------------------------------------------------


class FakeClient:
    """`status.SaleCalls` over fixed rows, counting each read."""

    def __init__(self, sales: dict[str, dict[str, Any]], lines: list[dict[str, str]]) -> None:
        self.sales, self.lines = sales, lines
        self.reads: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.reads)

    def get_sale(self, sale_id: str | int) -> dict[str, Any] | None:
        self.reads.append(f"Sale/{sale_id}")
        return self.sales.get(str(sale_id))

    def get_sale_lines(self, line_ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
        self.reads.append(f"SaleLine?{','.join(line_ids)}")
        return [row for row in self.lines if row["saleLineID"] in line_ids]

    def update_sale(self, sale_id: str | int, fields: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("no write")

    def list_payment_types(self) -> list[dict[str, Any]]:
        return []

    def get_item(self, item_id: str | int, relations: Any = ()) -> dict[str, Any] | None:
        return None


def test_the_profile_reads_a_refunds_parent_lines_once_and_a_plain_sale_costs_no_extra_read() -> None:
    online = refund(line("1001", TEE, "2"), line("1002", CAP, "1"), saleID=ONLINE_SALE, total="69")
    client = FakeClient(
        {"150": refund(line("1501", TEE, "-2", "1001"), line("1502", CAP, "-1", "1002")), ONLINE_SALE: online},
        [{**line("1001", TEE, "2"), "saleID": ONLINE_SALE}, {**line("1002", CAP, "1"), "saleID": ONLINE_SALE}],
    )
    connection = Connection(
        connection_id="rshop",
        pos_profile="r-series",
        pos_base_url="https://api.lightspeedapp.com",
        ecom_base_url="https://api.webshopapp.com",
    )
    cache = ReferenceCache()

    first = RSeriesSales(client, connection, cache).sale("150")
    again = RSeriesSales(client, connection, cache).sale("150")  # the same refund polled again, same warm sandbox
    original = RSeriesSales(client, connection, cache).sale(ONLINE_SALE)

    assert first is not None and again is not None and original is not None
    assert first.return_for == again.return_for == ONLINE_SALE and original.return_for is None
    assert returned_quantities(again) == {TEE: 2, CAP: 1}
    assert client.reads == ["Sale/150", "SaleLine?1001,1002", "Sale/150", f"Sale/{ONLINE_SALE}"]
