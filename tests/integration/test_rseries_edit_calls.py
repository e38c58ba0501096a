"""The catalog worker reports the POS requests an eCom edit cost (`CatalogSync.take_ecom_edits` counts them through
the `PosCatalog.calls` port; product_sync logs them as `pos_calls`)."""

from __future__ import annotations

from pos_ecom_sync import runtime

from tests.integration.test_rseries_ecom_edits import a_matrix_variant, synced
from tests.integration.test_rseries_product_sync import RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture


def _requests(rig: RSeriesCatalogRig) -> int:
    return int(rig.pos.stats()["requests"])


def test_taking_an_ecom_edit_reports_every_pos_request_it_made_and_its_echo_none(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    _, _, variant = a_matrix_variant(rig)
    rig.ecom.edit_variant(variant["id"], priceExcl=19.25)  # the merchant, in eCom's back office
    sync = runtime.catalog_sync(rig.connection)

    before = _requests(rig)
    edit = sync.take_ecom_edits("variant", variant["id"])
    made = _requests(rig) - before
    echo = sync.take_ecom_edits("variant", variant["id"])  # eCom's webhook again: eCom shows the POS now

    assert edit.outcome == "applied" and made >= 2  # a read of the family and the PUT of the Online price at least
    assert edit.pos_calls == made
    assert (echo.outcome, echo.pos_calls) == ("unchanged", 0)
