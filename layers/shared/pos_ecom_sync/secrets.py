"""Connection secrets from Secrets Manager, cached per cold start (Powertools parameters cache).

Values are `SecretStr`, so they never show up in logs or reprs.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from pydantic import ValidationError

from pos_ecom_sync.errors import ConfigurationError, UpstreamUnavailable
from pos_ecom_sync.models.connection import ConnectionSecrets


def secret_name(prefix: str, connection_id: str) -> str:
    return f"{prefix}{connection_id}"


class ConnectionSecretsReader:
    def __init__(self, prefix: str, *, client: Any = None, max_age_seconds: int = 300) -> None:
        self._prefix = prefix
        self._max_age = max_age_seconds
        self._provider = parameters.SecretsProvider(boto3_client=client) if client else parameters.SecretsProvider()

    def get(self, connection_id: str) -> ConnectionSecrets:
        name = secret_name(self._prefix, connection_id)
        try:
            raw = self._provider.get(name, transform="json", max_age=self._max_age)
        except parameters.exceptions.GetParameterError as exc:
            if "ResourceNotFoundException" in str(exc):
                raise ConfigurationError(f"secret {name} does not exist") from exc
            raise UpstreamUnavailable(f"secrets manager: cannot read {name}") from exc
        except parameters.exceptions.TransformParameterError as exc:
            raise ConfigurationError(f"secret {name} is not valid JSON") from exc
        try:
            return ConnectionSecrets.model_validate(raw)
        except ValidationError as exc:
            # Field names only: never echo secret values.
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise ConfigurationError(f"secret {name} is missing or has invalid fields: {fields}") from exc
