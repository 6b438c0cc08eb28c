"""FastAPI dependencies shared by all routes: the request's session and scope checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth import service as auth_service
from service.auth.schemas import Principal
from service.config import Settings
from service.db import Database
from service.errors import Unauthenticated
from service.ops.security import RateLimiter


async def get_database(request: Request) -> Database:
    """Async on purpose (as `get_settings_dep`): a plain attribute read, so no thread-pool hop."""
    database: Database = request.app.state.database
    return database


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def request_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (scope="function")."""
    with database.session() as session:
        yield session


BEARER = HTTPBearer(auto_error=False, description="An API key: `foresight keys create --scope …`")
SessionDep = Annotated[Session, Depends(request_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def require(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the bearer key, charges its rate limit (the verified key's
    bucket, or the client address's when verification fails) and checks the key grants `scope`."""

    def dependency(
        request: Request,
        session: SessionDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
        try:
            principal = auth_service.authenticate(session, credentials.credentials if credentials else None)
        except Unauthenticated:
            if limiter is not None:  # a made-up or revoked key spends its sender's address budget
                limiter.charge(request.scope, None)
            raise
        if limiter is not None:
            limiter.charge(request.scope, principal.key_id)
        auth_service.authorize(principal, scope)
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency
