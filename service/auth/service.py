"""API key use cases: create (secret shown once), list, revoke, and authenticate a bearer token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from service.auth import keys, repository
from service.auth.schemas import KeyCreated, KeyOut, Principal
from service.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from service.models import ApiKey
from service.models.base import utcnow
from service.names import name_problem

LAST_USED_RESOLUTION = timedelta(minutes=5)


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id, name=row.name, prefix=row.prefix, scopes=list(row.scopes), created_at=row.created_at,
        last_used_at=row.last_used_at, revoked_at=row.revoked_at,
    )  # fmt: skip


def create_key(session: Session, name: str, scopes: list[str]) -> KeyCreated:
    if problem := name_problem(name):
        raise InvalidInput(f"name: {problem}", details=[{"field": "name", "problem": problem}])
    unknown = sorted(set(scopes) - set(keys.SCOPES))
    if not scopes or unknown:
        raise InvalidInput(f"scopes must be a non-empty subset of {list(keys.SCOPES)}; unknown: {unknown}")
    secret, prefix = keys.generate_key()
    row = repository.add(session, name, prefix, keys.hash_key(secret), sorted(set(scopes)))
    return KeyCreated(**_out(row).model_dump(), key=secret)


def list_keys(session: Session) -> list[KeyOut]:
    return [_out(row) for row in repository.all_keys(session)]


def revoke_key(session: Session, key_id: int) -> KeyOut:
    row = repository.by_id(session, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} does not exist; list keys with GET /v1/keys")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return _out(row)


def has_active_keys(session: Session) -> bool:
    return repository.count_active(session) > 0


def authenticate(session: Session, token: str | None) -> Principal:
    """The caller behind `Authorization: Bearer <key>`, or 401 (missing, unknown or revoked key)."""
    if not token:
        raise Unauthenticated("missing API key; send Authorization: Bearer <key>")
    prefix = keys.prefix_of(token)
    row = repository.by_prefix(session, prefix) if prefix else None
    if row is None or not keys.matches(token, row.key_hash):
        raise Unauthenticated("invalid API key")
    if row.revoked_at is not None:
        raise Unauthenticated("this API key was revoked; create a new one with `foresight keys create`")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(key_id=row.id, name=row.name, scopes=list(row.scopes))


def authorize(principal: Principal, scope: str) -> None:
    if not keys.grants(principal.scopes, scope):
        raise Forbidden(f"this API key lacks the '{scope}' scope (it has {principal.scopes})")
