"""The live OAuth token pair of a connection's vendor API, and the lease that makes refreshing it single-flight.

One item per connection and API (pk=`CONN#<id>`, sk=`TOKEN#<api>`): `access_token`, `refresh_token`,
`expires_at` (epoch s, absent when the vendor gave none), `seed` (a fingerprint of the secret's refresh token
the chain started from: a re-authorized secret supersedes the stored pair), `revision`, and while a refresh
runs `lease_owner` + `lease_until`.

Refresh tokens rotate: the vendor revokes the old one once the new pair is in use, so the new pair must be
stored before anyone uses it, and two invocations must not refresh at once. Taking the lease is one
conditional UpdateItem (no live lease held by another owner); saving the new pair is conditional on still
holding it, so an invocation whose lease ran out never overwrites a newer pair (it discards its own, unused).
Items are only ever written with UpdateItem and read with GetItem (the workers' IAM already allows both).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.models.tokens import StoredTokens
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import conditional_write, dynamodb_call


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else None


def _n(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def _num(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}".rstrip("0").rstrip(".")}


def _parse(item: dict[str, Any]) -> StoredTokens:
    return StoredTokens(
        access_token=_s(item, "access_token"),
        refresh_token=_s(item, "refresh_token"),
        expires_at=_n(item, "expires_at"),
        seed=_s(item, "seed"),
        revision=int(_n(item, "revision") or 0),
        lease_owner=_s(item, "lease_owner"),
        lease_until=_n(item, "lease_until"),
    )


class TokenStore:
    def __init__(
        self,
        table_name: str,
        connection_id: str,
        api: str = "xseries",
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._key = {"pk": {"S": keys.connection_pk(connection_id)}, "sk": {"S": keys.token_sk(api)}}
        self._client = client or boto3.client("dynamodb")
        self._clock = clock

    def load(self) -> StoredTokens | None:
        with dynamodb_call("get token pair"):
            item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        return _parse(item) if item else None

    def acquire_lease(self, owner: str, lease_s: float) -> StoredTokens | None:
        """Take the refresh lease; the stored pair as of taking it, or None while another owner holds it."""
        now = self._clock()
        answer = conditional_write(
            "take token refresh lease",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}, ":until": _num(now + lease_s), ":now": _num(now)},
                ReturnValues="ALL_NEW",
            ),
        )
        if answer is None:
            return None
        return _parse(answer["Attributes"])

    def save_pair(
        self, owner: str, access_token: str, refresh_token: str, expires_at: float | None, seed: str | None
    ) -> bool:
        """Store a freshly issued pair and end the lease, only while `owner` still holds it (False: it lost it, and
        must not use the pair it got)."""
        values: dict[str, Any] = {
            ":owner": {"S": owner},
            ":access": {"S": access_token},
            ":refresh": {"S": refresh_token},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":now": _num(self._clock()),
        }
        sets = [
            "access_token = :access",
            "refresh_token = :refresh",
            "revision = if_not_exists(revision, :zero) + :one",
            "updated_at = :now",
        ]
        removes = ["lease_owner", "lease_until"]
        for name, value in (("expires_at", expires_at), ("seed", seed)):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _num(value) if isinstance(value, float | int) else {"S": value}
        saved = conditional_write(
            "save token pair",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=values,
            ),
        )
        return saved is not None

    def release(self, owner: str) -> None:
        """Give the lease back after a failed refresh (best effort: it also runs out by itself)."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
