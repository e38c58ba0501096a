"""The fingerprint of an eCom order's status-relevant state, apart from the status rules that act on it.

Intake (webhooks and the poller's sweep) stamps every eCom order notice with it, and status sync keeps the digests it
read and wrote (`status.sync`): a notice whose digest is one status sync has seen tells of nothing new. It lives here,
not in `status.rules`, so that intake's cold start does not build the rules' types it never uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# What an eCom order must carry for its digest: the fields status sync acts on, and eCom's stamp of the order.
ORDER_DIGEST_FIELDS = ("status", "paymentStatus", "shipmentStatus", "updatedAt")
ORDER_DIGEST_CHARS = 16  # 64 bits, as `models.sales.sale_digest`


def ecom_order_digest(order: Mapping[str, Any]) -> str | None:
    """A fingerprint of an eCom order as status sync reads it (`status.rules.EcomOrderState`) and of eCom's stamp of
    it, from an order row as a webhook delivers it, the sweep lists it, a read or our own update's answer returns it.

    A notice whose digest is one a read (or a write) of ours saw tells of nothing status sync has not seen
    (`status.sync`). The stamp is in it, so the same state reached again later is another digest; the statuses are,
    so a merchant's edit within the same second (eCom stamps whole seconds) that changes any of them is another
    digest too. None when the row lacks any of `ORDER_DIGEST_FIELDS` (the notice is then read): a payload without
    them says nothing of the order's state."""
    order_id = order.get("id")
    texts = [order.get(name) for name in ORDER_DIGEST_FIELDS]
    if not isinstance(order_id, int) or isinstance(order_id, bool) or not all(isinstance(t, str) and t for t in texts):
        return None
    # The rest of what `status.rules.EcomOrderState.of` reads, as it reads it (absent: False / ""): a row without them
    # is judged as the state a read of it gives.
    extras = [bool(order.get("shipmentIsPickup")), str(order.get("paymentTitle") or "")]
    text = json.dumps([order_id, *texts, *extras], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:ORDER_DIGEST_CHARS]
