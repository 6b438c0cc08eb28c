"""API schemas of API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.names import Name

Scope = Literal["ingest", "read", "operate", "admin"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name = Field(examples=["prometheus-west"])
    scopes: list[Scope] = Field(min_length=1, examples=[["ingest"]])


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret. Shown once; only its hash is stored.")


class Principal(BaseModel):
    """Who is calling: the key's id, name and scopes (the actor recorded on decisions)."""

    key_id: int
    name: str
    scopes: list[str]

    @property
    def actor(self) -> str:
        """How the key appears in the audit log: its name and id (never the secret)."""
        return f"key:{self.name}#{self.key_id}"
