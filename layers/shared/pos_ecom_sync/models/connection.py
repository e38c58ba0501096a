"""A connection pairs one POS account with one eCom shop and carries every per-retailer setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ConnectionId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]

# Plan presets (seed 000): variants count as products. "unlimited" holds at 70,000 until an operator lifts it.
PLAN_PRODUCT_CAPS: dict[str, int] = {"business": 5_000, "unlimited": 70_000}


class PaymentMethodSetting(BaseModel):
    """How one eCom payment method (keyed by its title in `Connection.payment_methods`) arrives in the POS.

    `integrated`: a paid order records a payment on the POS payment type `payment_type_id`, or else the one named
    `payment_type_name` (default: the eCom title), so the processor's name shows in sales history and reports.
    `unpaid`: the sale arrives with nothing paid; staff take the payment on the sell screen once it is confirmed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["integrated", "unpaid"]
    payment_type_id: str | None = None
    payment_type_name: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Connection(BaseModel):
    """Settings of one POS <-> eCom pairing (secrets live in Secrets Manager, see `ConnectionSecrets`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    connection_id: ConnectionId
    status: Literal["active", "paused"] = "active"
    pos_profile: Literal["x-series", "r-series"] = "x-series"
    # e.g. https://dockside.retail.lightspeed.app (X-Series), https://api.lightspeedapp.com (R-Series) or
    # http://127.0.0.1:8081 (simulator)
    pos_base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")]
    # R-Series: the account the API paths name (`/API/V3/Account/{accountID}/`); None: the first account the token
    # serves (`GET /API/V3/Account.json`), looked up by each client.
    pos_account_id: Annotated[str, Field(pattern=r"^[0-9]{1,18}$")] | None = None
    ecom_base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")]
    ecom_language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "en"
    online_register_id: str | None = None
    # The outlet of `online_register_id` (X-Series GET /api/2.0/registers `outlet_id`), saved with the register.
    # Its stock always counts online (seed 003: to stop it syncing, change the register), so it is always one of
    # `connected_outlet_ids`. None: no register chosen, or a connection saved before it was stored (the stock
    # worker then falls back to looking the register up while no outlet is chosen, as it did before).
    register_outlet_id: str | None = None
    connected_outlet_ids: list[str] = Field(default_factory=list)
    primary_outlet_id: str | None = None
    plan: Literal["business", "unlimited", "custom"] = "business"
    product_cap: Annotated[int, Field(ge=0)] | None = None
    delete_policy: Literal["delete", "hide"] = "delete"
    notifications_enabled: bool = True
    # eCom payment title -> how it arrives in the POS (orders.payments: overrides DEFAULT_PAYMENT_METHODS by title).
    # Stored as {"mode": "integrated"|"unpaid", "payment_type_id"|"payment_type_name": ...}, as before.
    payment_methods: dict[str, PaymentMethodSetting] = Field(default_factory=dict)
    # The POS product imported orders carry their shipping charge on (one line); None: the charge goes in the note.
    shipping_product_id: str | None = None
    # eCom shipping method id (as a string: DynamoDB map keys are strings) -> the POS outlet it ships or is picked
    # up from. No eCom source documents an outlet link on a shipping method (it is a back-office setting, seed 002),
    # so the operator sets it (`pos-ecom-sync connections set-shipping-outlets`). Order routing sends an order
    # whose method is listed here to that outlet; disconnecting the outlet drops its entries (seed 002).
    shipping_method_outlets: dict[Annotated[str, Field(pattern=r"^[0-9]{1,18}$")], str] = Field(default_factory=dict)
    # A mapped eCom product that answers 404 was deleted by hand in eCom. "recreate": the family is created again
    # on its next POS change (the POS is the system of record); "unlink": it stays out of eCom, with the reason
    # visible to the operator, until the operator links it again.
    ecom_deleted_product_policy: Literal["recreate", "unlink"] = "recreate"
    # X-Series has no online-price field on a product: the retailer's online prices live in this price book.
    # None: eCom gets the retail price.
    online_price_book_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("pos_base_url", "ecom_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _primary_is_connected(self) -> Connection:
        if (
            self.primary_outlet_id
            and self.connected_outlet_ids
            and self.primary_outlet_id not in self.connected_outlet_ids
        ):
            raise ValueError("primary_outlet_id must be one of connected_outlet_ids")
        return self

    @model_validator(mode="after")
    def _register_outlet_is_connected(self) -> Connection:
        if self.register_outlet_id is None:
            return self
        if self.online_register_id is None:
            raise ValueError("register_outlet_id is the outlet of online_register_id: set the register too")
        if self.register_outlet_id not in self.connected_outlet_ids:
            raise ValueError(
                f"connected_outlet_ids must include the register's outlet {self.register_outlet_id}: its stock "
                "always counts online (to stop it syncing, change the register)"
            )
        return self

    @property
    def effective_product_cap(self) -> int:
        if self.product_cap is not None:
            return self.product_cap
        return PLAN_PRODUCT_CAPS.get(self.plan, PLAN_PRODUCT_CAPS["business"])

    @property
    def is_active(self) -> bool:
        return self.status == "active"


# The webhook-verification credentials: the only ones the internet-facing webhook function may read.
WebhookCredential = Literal["pos_webhook_token", "pos_webhook_signing_secret", "ecom_webhook_secret"]
WEBHOOK_CREDENTIALS: tuple[WebhookCredential, ...] = (
    "pos_webhook_token",
    "pos_webhook_signing_secret",
    "ecom_webhook_secret",
)
MIN_WEBHOOK_CREDENTIAL_LENGTH = 16


def _long_enough(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_WEBHOOK_CREDENTIAL_LENGTH:
        raise ValueError(f"webhook credentials must be at least {MIN_WEBHOOK_CREDENTIAL_LENGTH} characters")
    return value


def _secret_json(model: BaseModel) -> dict[str, str]:
    """The JSON a secret part is stored as (every value revealed: only for writing it to Secrets Manager)."""
    out: dict[str, str] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            out[name] = value.get_secret_value()
        elif isinstance(value, datetime):
            out[name] = value.isoformat()
        elif value is not None:
            out[name] = str(value)
    return out


class ApiSecrets(BaseModel):
    """The API part of a connection's credentials, secret `<SECRET_PREFIX><connection_id>/api` (workers, poller,
    reconciliation; never the webhook function).

    X-Series authorizes either with a personal token (`pos_access_token` alone, static) or as an OAuth app
    (`pos_client_id`, `pos_client_secret`, `pos_refresh_token`; `pos_access_token` is then the optional first
    access token). OAuth access tokens expire and every refresh rotates the refresh token, so after the first
    refresh the live pair is kept in the sync table (`state.token_store`), not here; putting a new
    `pos_refresh_token` here (re-authorizing) supersedes the stored pair.
    """

    model_config = ConfigDict(extra="forbid")

    pos_access_token: SecretStr | None = None
    pos_client_id: SecretStr | None = None
    pos_client_secret: SecretStr | None = None
    pos_refresh_token: SecretStr | None = None
    ecom_api_key: SecretStr
    ecom_api_secret: SecretStr

    @model_validator(mode="after")
    def _one_pos_authorization(self) -> ApiSecrets:
        oauth = (self.pos_client_id, self.pos_client_secret, self.pos_refresh_token)
        if any(oauth) and not all(oauth):
            raise ValueError("an OAuth connection needs pos_client_id, pos_client_secret and pos_refresh_token")
        if not any(oauth) and self.pos_access_token is None:
            raise ValueError("set pos_access_token (personal token) or the OAuth fields")
        return self

    @property
    def pos_uses_oauth(self) -> bool:
        return self.pos_refresh_token is not None

    def to_json_dict(self) -> dict[str, str]:
        return _secret_json(self)


class WebhookSecrets(BaseModel):
    """The webhook part, secret `<SECRET_PREFIX><connection_id>/webhook`: what the webhook function may read.

    `previous_*` keep a rotated credential valid until `previous_valid_until` (the overlap window): deliveries the
    vendor queued or retries with the old value still verify while the vendor side is switched to the new one.
    """

    model_config = ConfigDict(extra="forbid")

    # Shared token X-Series webhooks carry in their URL (checked on every delivery). None for a POS that sends no
    # webhooks (R-Series): every POS delivery to the connection is then refused (`intake.verify`).
    pos_webhook_token: SecretStr | None = None
    # When set, X-Series deliveries must also carry `X-Signature: signature=<HMAC-SHA256 of the raw body>,...`
    # keyed with this secret: the OAuth app's client secret for webhooks the app created.
    pos_webhook_signing_secret: SecretStr | None = None
    # eCom signs deliveries with md5(raw body + this secret): the shop API key's secret (F4574).
    ecom_webhook_secret: SecretStr
    previous_pos_webhook_token: SecretStr | None = None
    previous_pos_webhook_signing_secret: SecretStr | None = None
    previous_ecom_webhook_secret: SecretStr | None = None
    previous_valid_until: datetime | None = None

    _check_length = field_validator(
        "pos_webhook_token",
        "pos_webhook_signing_secret",
        "ecom_webhook_secret",
        "previous_pos_webhook_token",
        "previous_pos_webhook_signing_secret",
        "previous_ecom_webhook_secret",
    )(_long_enough)

    @field_validator("previous_valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("previous_valid_until needs a time zone, e.g. 2026-07-01T12:00:00+00:00")
        return value

    @model_validator(mode="after")
    def _window_for_previous(self) -> WebhookSecrets:
        if self.previous_valid_until is None and any(self.previous(name) for name in WEBHOOK_CREDENTIALS):
            raise ValueError("previous_* values need previous_valid_until (the end of the overlap window)")
        return self

    def previous(self, credential: WebhookCredential) -> SecretStr | None:
        value: SecretStr | None = getattr(self, f"previous_{credential}")
        return value

    def accepted(self, credential: WebhookCredential, now: datetime) -> tuple[SecretStr | None, SecretStr | None]:
        """(current, previous): previous is None outside the overlap window."""
        in_window = self.previous_valid_until is not None and now < self.previous_valid_until
        current: SecretStr | None = getattr(self, credential)
        return current, self.previous(credential) if in_window else None

    def rotated(
        self, credential: WebhookCredential, new_value: SecretStr | None, *, now: datetime, overlap: timedelta
    ) -> WebhookSecrets:
        """`credential` becomes `new_value`; its current value stays accepted for `overlap` (zero: not at all, e.g.
        after a leak). Previous values of the other credentials are kept while their window is open, dropped once it
        has ended; the window is the later of the two ends."""
        window_open = self.previous_valid_until is not None and now < self.previous_valid_until
        previous = {name: self.previous(name) if window_open else None for name in WEBHOOK_CREDENTIALS}
        previous[credential] = getattr(self, credential) if overlap > timedelta(0) else None
        ends = [now + overlap] if previous[credential] else []
        if any(previous[name] for name in WEBHOOK_CREDENTIALS if name != credential):
            ends.append(self.previous_valid_until)  # type: ignore[arg-type]  # set: the window is open
        data: dict[str, object] = {name: getattr(self, name) for name in WEBHOOK_CREDENTIALS}
        data[credential] = new_value
        data.update({f"previous_{name}": value for name, value in previous.items()})
        data["previous_valid_until"] = max(ends) if ends else None
        return WebhookSecrets.model_validate(data)

    def to_json_dict(self) -> dict[str, str]:
        return _secret_json(self)


class ConnectionSecrets(BaseModel):
    """Every credential of a connection in one object: what the operator supplies (`connections create`,
    `set-secrets`) and the shape of the legacy single secret `<SECRET_PREFIX><connection_id>`
    (`connections split-secret` migrates it). Stored split: `api_part()` and `webhook_part()`."""

    model_config = ConfigDict(extra="forbid")

    pos_access_token: SecretStr | None = None
    pos_client_id: SecretStr | None = None
    pos_client_secret: SecretStr | None = None
    pos_refresh_token: SecretStr | None = None
    # Needed by a POS that sends webhooks (X-Series: `require_pos_webhook_token`); R-Series has none.
    pos_webhook_token: SecretStr | None = None
    pos_webhook_signing_secret: SecretStr | None = None
    ecom_api_key: SecretStr
    ecom_api_secret: SecretStr
    ecom_webhook_secret: SecretStr

    _check_length = field_validator("pos_webhook_token", "ecom_webhook_secret", "pos_webhook_signing_secret")(
        _long_enough
    )

    @model_validator(mode="after")
    def _parts_are_valid(self) -> ConnectionSecrets:
        self.api_part()
        return self

    def require_pos_webhook_token(self, pos_sends_webhooks: bool) -> None:
        """A POS that sends webhooks (X-Series) is authenticated by the token its deliveries carry, so its connection
        needs one; a POS without webhooks (R-Series, every change polled) needs none. ValueError says what is
        missing."""
        if pos_sends_webhooks and self.pos_webhook_token is None:
            raise ValueError(
                "pos_webhook_token is required: this POS sends webhooks, each carrying the token in its URL "
                f"(at least {MIN_WEBHOOK_CREDENTIAL_LENGTH} characters)"
            )

    def api_part(self) -> ApiSecrets:
        return ApiSecrets.model_validate({name: getattr(self, name) for name in ApiSecrets.model_fields})

    def webhook_part(self) -> WebhookSecrets:
        return WebhookSecrets.model_validate({name: getattr(self, name) for name in WEBHOOK_CREDENTIALS})
