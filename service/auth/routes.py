"""HTTP routes of API keys (scope admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.auth import service as auth
from service.auth.schemas import KeyCreate, KeyCreated, KeyOut, Principal
from service.deps import SessionDep, require

router = APIRouter(prefix="/v1/keys", tags=["auth"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.post(
    "", response_model=KeyCreated, status_code=201, summary="Create a key (the secret is shown once)"
)
def create_key(_: Admin, session: SessionDep, body: KeyCreate) -> KeyCreated:
    return auth.create_key(session, body.name, list(body.scopes))


@router.get("", response_model=list[KeyOut], summary="List keys (never their secrets)")
def list_keys(_: Admin, session: SessionDep) -> list[KeyOut]:
    return auth.list_keys(session)


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke a key (it stops working at once)")
def revoke_key(_: Admin, session: SessionDep, key_id: int) -> KeyOut:
    return auth.revoke_key(session, key_id)
