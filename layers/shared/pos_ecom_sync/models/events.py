"""Parser models for the events functions receive that are not API or SQS events."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pos_ecom_sync.models.connection import ConnectionId


class PollTrigger(BaseModel):
    """The schedule's event (its content does not matter), or an operator's `{"connection_id": "x"}`."""

    model_config = ConfigDict(extra="allow")

    connection_id: ConnectionId | None = None
