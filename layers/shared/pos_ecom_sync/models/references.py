"""How a POS sale names the eCom order it was imported from: the order worker writes the reference, status sync reads
it back. Apart from the sale models (`models.sales`), which the order worker never builds."""

from __future__ import annotations

# The reference an imported sale carries back to its eCom order: "ecom-<order id>" (our convention, whatever field
# the POS keeps it in). Anything else on a sale is an in-store reference.
ORDER_REFERENCE_PREFIX = "ecom-"


def order_in_reference(reference: str | None) -> int | None:
    """The eCom order id in a sale's reference "ecom-<order id>"; None for an in-store sale (or none)."""
    text = reference or ""
    suffix = text.removeprefix(ORDER_REFERENCE_PREFIX)
    return int(suffix) if text.startswith(ORDER_REFERENCE_PREFIX) and suffix.isdigit() else None


def in_store_reference(reference: str | None) -> bool:
    """A reference that is there and is not ours: the sale was made in store, not imported from eCom."""
    return bool(reference) and not str(reference).startswith(ORDER_REFERENCE_PREFIX)
