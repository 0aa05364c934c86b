"""The event envelope of the design, frozen and validated on both sides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from awasi.events.payloads import Payload, payload_model
from awasi.ids import new_id


class InvalidEvent(ValueError):
    """Raw bytes that are not a valid envelope with a valid payload; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Envelope(BaseModel):
    """``event_id``, ``type``, ``version``, ``occurred_at`` (UTC), ``complaint_id``,
    ``producer``, a typed ``payload`` (validated against the registry) and the
    optional ``seq`` (the complaint's sequence number as the producer knew it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    complaint_id: str = Field(min_length=1, max_length=64)
    producer: str = Field(min_length=1, max_length=32)
    payload: dict[str, Any]
    # The complaint's sequence number as the producer knew it (awasi/lifecycle.py):
    # optional, so events written before it existed still parse (never stale).
    seq: int | None = Field(default=None, ge=0)

    def typed_payload(self) -> Payload:
        """The payload as its registered model (validated already at construction)."""
        return payload_model(self.type, self.version).model_validate(self.payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def build(
        cls, payload: Payload, *, complaint_id: str, producer: str,
        occurred_at: datetime | None = None, event_id: uuid.UUID | None = None,
        seq: int | None = None,
    ) -> Envelope:
        """Wrap a typed payload; its class carries the event type and version."""
        return cls(
            event_id=event_id or new_id(),
            type=payload.EVENT_TYPE,
            version=payload.EVENT_VERSION,
            occurred_at=(occurred_at or datetime.now(UTC)).astimezone(UTC),
            complaint_id=complaint_id,
            producer=producer,
            payload=payload.model_dump(mode="json"),
            seq=seq,
        )

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Envelope:
        """Parse and validate, envelope and payload; raise ``InvalidEvent`` with the reason."""
        if raw is None:
            raise InvalidEvent("empty message")
        try:
            env = cls.model_validate_json(raw)
        except ValidationError as e:
            raise InvalidEvent(f"envelope: {_first_error(e)}") from e
        try:
            model = payload_model(env.type, env.version)
        except KeyError as e:
            raise InvalidEvent(f"unknown event type {env.type} v{env.version}") from e
        try:
            model.model_validate(env.payload)
        except ValidationError as e:
            raise InvalidEvent(f"payload of {env.type} v{env.version}: {_first_error(e)}") from e
        return env


def _first_error(e: ValidationError) -> str:
    errors = e.errors()
    parts = []
    for err in errors[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
