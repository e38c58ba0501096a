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
