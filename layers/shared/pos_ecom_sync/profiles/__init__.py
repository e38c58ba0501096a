"""POS profiles: everything one POS vendor needs, behind one seam (`base.PosProfile`).

The sync domain (catalog, stock, orders, status, intake, reconcile) speaks `models/` types and declares the ports it
needs as Protocols; a profile package (`xseries/`, later `rseries/`) holds that POS's connector, auth, change feeds
and mapping. `runtime` picks the connection's profile with `profile_for` and wires it into the domain; no domain
package imports this one (tests/unit/test_layering.py).
"""

from __future__ import annotations

from importlib import import_module

from pos_ecom_sync.errors import ConfigurationError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.base import PosProfile

# `Connection.pos_profile` -> the module whose `PROFILE` serves it (imported on first use: a function pays only for
# the profiles its connections use).
PROFILES: dict[str, str] = {
    "x-series": "pos_ecom_sync.profiles.xseries",
    "r-series": "pos_ecom_sync.profiles.rseries",
}


def profile_named(name: str) -> PosProfile:
    module = PROFILES.get(name)
    if module is None:
        raise ConfigurationError(f"no POS profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    profile: PosProfile = import_module(module).PROFILE
    return profile


def profile_for(connection: Connection) -> PosProfile:
    return profile_named(connection.pos_profile)
