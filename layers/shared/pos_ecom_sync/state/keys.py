"""Key layout of the single sync table (pk/sk + gsi1). Every item of a connection shares its partition."""

from __future__ import annotations


def connection_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


CONFIG_SK = "CONFIG"
CONNECTIONS_GSI_PK = "CONNECTIONS"


def cursor_sk(feed: str) -> str:
    return f"CURSOR#{feed}"


def delivery_sk(delivery_key: str) -> str:
    return f"DELIVERY#{delivery_key}"


def rate_sk(api: str) -> str:
    return f"RATE#{api}"


def family_sk(pos_family_key: str) -> str:
    """Catalog state of one POS family, keyed by the parent row's id (the family's message group)."""
    return f"FAMILY#{pos_family_key}"


# How many eCom variants the connection manages (the plan cap counts variants).
CATALOG_COUNT_SK = "CATALOG#COUNT"


def pos_variant_link_sk(pos_product_id: str) -> str:
    """POS variant id -> the eCom variant we created for it (stock and orders look it up)."""
    return f"LINK#pos#{pos_product_id}"


def ecom_variant_link_sk(ecom_variant_id: int) -> str:
    """eCom variant id -> our POS variant id (eCom webhooks and order lines name eCom ids)."""
    return f"LINK#ecom#{ecom_variant_id}"
