"""X-Series OAuth: the connector against the simulator, the token pair in (moto) DynamoDB.

Access tokens expire and every refresh rotates the refresh token (the old one dies when the new access token is
first used), so: refresh on a known expiry or on a 401, once; one refresher per connection however many workers
run; the new pair stored before it is used; a refused grant is a clear error; personal tokens are untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pos_ecom_sync.errors import AuthorizationRefused, ConfigurationError, UpstreamError
from pos_ecom_sync.profiles.xseries.auth import OAuthTokens
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.token_store import TokenStore
from pos_ecom_sync.workers import PERMANENT_ERRORS

from local_stack.simulators.xseries import XSeriesSimulator
from tests.integration.test_rate_budget import AtomicItemWrites
from tests.support import ManualClock

PERSONAL_TOKEN = "personal-token-0001"
CLIENT_ID, CLIENT_SECRET = "app-client-id", "app-client-secret-0001"


@dataclass
class Rig:
    pos: XSeriesSimulator
    table: str
    dynamodb: Any
    clock: ManualClock

    def authorize(self) -> dict[str, Any]:
        return self.pos.oauth.authorize(CLIENT_ID)

    def store(self) -> TokenStore:
        return TokenStore(self.table, "shop", client=self.dynamodb, clock=self.clock)

    def tokens(self, grant: dict[str, Any], *, knows_expiry: bool = True, **kwargs: Any) -> OAuthTokens:
        """A worker's view of the connection: the secret holds the first grant; the sync table the live pair."""
        return OAuthTokens(
            self.pos.url,
            CLIENT_ID,
            CLIENT_SECRET,
            grant["refresh_token"],
            self.store(),
            access_token=grant["access_token"],
            expires_at=float(grant["expires"]) if knows_expiry else None,
            clock=self.clock,
            **kwargs,
        )

    def client(self, tokens: OAuthTokens) -> XSeriesClient:
        return XSeriesClient(self.pos.url, None, InMemoryRateBudget(), token_provider=tokens)

    def grant_with(self, refresh_token: str) -> httpx.Response:
        form = {
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
        }
        return httpx.post(f"{self.pos.url}/api/1.0/token", data=form)


@pytest.fixture
def rig(sync_table: str, dynamodb_client: Any) -> Iterator[Rig]:
    clock = ManualClock(1_800_000_000.0)
    pos = XSeriesSimulator(token=PERSONAL_TOKEN, seed=31, clock=clock, rate_limit=0)
    pos.oauth.register(CLIENT_ID, CLIENT_SECRET)
    pos.start()
    try:
        yield Rig(pos, sync_table, AtomicItemWrites(dynamodb_client), clock)
    finally:
        pos.stop()


def test_an_expired_token_is_refreshed_once_and_the_rotated_pair_is_stored_before_its_first_use(rig: Rig) -> None:
    grant = rig.authorize()
    tokens = rig.tokens(grant)
    saved_unused: list[bool] = []
    store = tokens._store
    original_save = store.save_pair

    def save_pair(owner: str, access: str, refresh: str, expires_at: float | None, seed: str | None) -> bool:
        saved_unused.append(not rig.pos.oauth.access_token_used(access))
        return original_save(owner, access, refresh, expires_at, seed)

    store.save_pair = save_pair  # type: ignore[method-assign]
    client = rig.client(tokens)
    assert client.list_registers()
    assert rig.pos.oauth.refresh_grants == 0

    rig.clock.now = float(grant["expires"]) + 1  # a week later
    assert client.list_registers() and client.list_payment_types()

    assert rig.pos.oauth.refresh_grants == 1 and tokens.refreshes == 1
    assert saved_unused == [True]  # stored while the vendor had not seen the new access token yet
    stored = rig.store().load()
    assert stored is not None and stored.refresh_token not in (None, grant["refresh_token"])
    assert stored.expires_at == pytest.approx(rig.clock.now + 604_800, abs=1)
    # The first use of the new access token revoked the refresh token it was granted for.
    refused = rig.grant_with(grant["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_a_token_is_refreshed_ahead_of_its_expiry_by_the_margin(rig: Rig) -> None:
    grant = rig.authorize()
    tokens = rig.tokens(grant)
    rig.clock.now = float(grant["expires"]) - 60  # inside the 5-minute margin: a call could outlive the token

    rig.client(tokens).list_registers()

    assert rig.pos.oauth.refresh_grants == 1


def test_a_401_triggers_exactly_one_refresh_and_one_resend(rig: Rig) -> None:
    grant = rig.authorize()
    tokens = rig.tokens(grant, knows_expiry=False)  # nothing says it expired: only the 401 does
    rig.pos.oauth.expire_access_tokens()
    requests_before = rig.pos.requests

    registers = rig.client(tokens).list_registers()

    assert registers and rig.pos.oauth.refresh_grants == 1 and tokens.refreshes == 1
    assert rig.pos.requests - requests_before == 3  # the refused call, the token grant, the resend


def test_a_401_with_a_fresh_token_is_not_refreshed_again_and_stands(rig: Rig) -> None:
    grant = rig.authorize()
    tokens = rig.tokens(grant, knows_expiry=False)
    client = rig.client(tokens)
    rig.pos.oauth.expire_access_tokens()
    rig.pos.oauth.ttl_s = 0  # every new token is dead on arrival too

    with pytest.raises(UpstreamError) as refused:
        client.list_registers()

    assert refused.value.status == 401 and "Access token is not valid" in refused.value.body
    assert rig.pos.oauth.refresh_grants == 1  # once per call, never a loop


def test_concurrent_workers_of_one_connection_refresh_once_and_all_succeed(rig: Rig) -> None:
    grant = rig.authorize()
    rig.pos.oauth.expire_access_tokens()
    workers = [rig.tokens(grant, knows_expiry=False) for _ in range(8)]  # separate sandboxes, one sync table
    start = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def work(index: int) -> None:
        start.wait()
        try:
            results[index] = rig.client(workers[index]).list_registers()
        except Exception as exc:  # reported below with the others' results
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(isinstance(r, list) and r for r in results), results
    assert rig.pos.oauth.refresh_grants == 1 and sum(w.refreshes for w in workers) == 1
    assert rig.pos.oauth.refused_grants == 0


def test_a_refused_refresh_raises_a_clear_error_that_parks_the_work(rig: Rig) -> None:
    grant = rig.authorize()
    tokens = rig.tokens(grant, knows_expiry=False)
    rig.pos.oauth.expire_access_tokens()
    rig.pos.oauth.revoke_refresh_tokens()  # the retailer disconnected the app

    with pytest.raises(AuthorizationRefused) as refused:
        rig.client(tokens).list_registers()

    assert "invalid_grant" in refused.value.message and "re-authorize" in refused.value.message
    assert grant["refresh_token"] not in refused.value.message and CLIENT_SECRET not in refused.value.message
    assert isinstance(refused.value, ConfigurationError) and isinstance(refused.value, PERMANENT_ERRORS)
    stored = rig.store().load()
    assert stored is None or stored.lease_owner is None  # the lease was given back


def test_a_reauthorized_secret_supersedes_the_stored_pair(rig: Rig) -> None:
    first = rig.authorize()
    rig.clock.now = float(first["expires"]) + 1
    rig.client(rig.tokens(first)).list_registers()  # stores a pair descending from the first grant
    rig.pos.oauth.revoke_refresh_tokens()
    second = rig.authorize()  # the operator connects the app again and puts the new grant in the secret

    assert rig.client(rig.tokens(second)).list_registers()

    assert rig.pos.oauth.refused_grants == 0


def test_a_personal_token_works_unchanged_and_never_refreshes(rig: Rig) -> None:
    client = XSeriesClient(rig.pos.url, PERSONAL_TOKEN, InMemoryRateBudget())
    rig.clock.now += 10 * 604_800

    assert client.list_registers()
    assert rig.pos.oauth.refresh_grants == 0 and rig.store().load() is None
    with pytest.raises(UpstreamError) as refused:
        XSeriesClient(rig.pos.url, "not-the-token", InMemoryRateBudget()).list_registers()
    assert refused.value.status == 401
