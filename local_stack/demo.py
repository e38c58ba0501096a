"""The demo connection's id and credentials (local only; the simulators are started with the same values)."""

DEMO_CONNECTION_ID = "demo"
DEMO_SECRETS = {
    "pos_access_token": "demo-pos-access-token",
    "pos_webhook_token": "demo-pos-webhook-token",
    "ecom_api_key": "demo-ecom-api-key",
    "ecom_api_secret": "demo-ecom-api-secret",
    "ecom_webhook_secret": "demo-ecom-app-secret",
}
