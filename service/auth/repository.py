"""SQL of API keys."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from service.models import ApiKey


def add(session: Session, name: str, prefix: str, key_hash: str, scopes: list[str]) -> ApiKey:
    row = ApiKey(name=name, prefix=prefix, key_hash=key_hash, scopes=scopes)
    session.add(row)
    session.flush()
    return row


_BY_PREFIX = select(ApiKey).where(ApiKey.prefix == bindparam("prefix"))  # built once: every request


def by_prefix(session: Session, prefix: str) -> ApiKey | None:
    return session.scalar(_BY_PREFIX, {"prefix": prefix})


def by_id(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def all_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def count_active(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(ApiKey.revoked_at.is_(None))) or 0)
