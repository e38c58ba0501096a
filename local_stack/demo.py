"""The demo connection's id and credentials (local only; the simulators are started with the same values)."""

DEMO_CONNECTION_ID = "demo"
DEMO_SECRETS = {
    "pos_access_token": "demo-pos-access-token",
    "pos_webhook_token": "demo-pos-webhook-token",
    "ecom_api_key": "demo-ecom-api-key",
    "ecom_api_secret": "demo-ecom-api-secret",
    "ecom_webhook_secret": "demo-ecom-app-secret",
}
# `--pos r-series`: the OAuth app the R-Series simulator knows; the merchant's grant (refresh token) is issued at start.
RSERIES_DEMO_APP = {"client_id": "rseries-demo", "client_secret": "rseries-demo-app-secret"}
