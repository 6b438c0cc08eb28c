"""Dashboard sessions: an API key logs in once, then a signed, HTTP-only, SameSite=Strict cookie names the
key (re-checked on every request, so revoking the key ends its sessions). CSRF tokens are bound to the
session (an HMAC of its nonce); the login form uses a double-submit cookie since no session exists yet.

Logging out revokes on the server, not only in the browser: the moment is recorded for the key, and every
cookie of that key issued before it is refused from then on, so a copied cookie stops working too (the
key's other browsers are logged out with it). The moment is kept in `job_runs` under the name
`dashboard-logout:<key id>`, a table of "when did this last happen" rows that needs no migration."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.orm import Session

from service.auth import keys
from service.auth import repository as keys_repo
from service.auth.schemas import Principal
from service.config import Settings
from service.models import JobRun
from service.models.base import utcnow

COOKIE = "foresight_session"
LOGIN_CSRF_COOKIE = "foresight_login_csrf"
CSRF_FIELD = "csrf_token"
_PROCESS_SECRET = secrets.token_bytes(32)  # used when `session_secret` is empty: sessions end on restart


@dataclass(frozen=True)
class User:
    """The logged-in key: who it is, what it may do, and the session's CSRF token."""

    principal: Principal
    csrf: str

    @property
    def can_operate(self) -> bool:
        return keys.grants(self.principal.scopes, "operate")

    @property
    def actor(self) -> str:
        """The audit-log actor, spelled as the REST API spells it."""
        return f"key:{self.principal.name}#{self.principal.key_id}"


def _secret(settings: Settings) -> bytes:
    return settings.session_secret.encode() if settings.session_secret else _PROCESS_SECRET


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(settings: Settings, payload: str) -> str:
    return _b64(hmac.new(_secret(settings), payload.encode(), hashlib.sha256).digest())


def _csrf_for(settings: Settings, nonce: str) -> str:
    return _sign(settings, f"csrf|{nonce}")


def encode(settings: Settings, key_id: int, now: float | None = None) -> str:
    """A cookie value naming `key_id`, with a fresh nonce and the time it was issued."""
    issued = round(now if now is not None else time.time(), 3)
    body = {"k": key_id, "n": secrets.token_urlsafe(16), "t": issued}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_sign(settings, payload)}"


def decode(settings: Settings, value: str | None) -> tuple[int, str, float] | None:
    """(key id, nonce, issued at) of a well-signed, unexpired cookie value, else None."""
    if not value or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    if not hmac.compare_digest(signature, _sign(settings, payload)):
        return None
    try:
        body = json.loads(_unb64(payload))
        key_id, nonce, issued = int(body["k"]), str(body["n"]), float(body["t"])
    except (ValueError, KeyError, TypeError):
        return None
    if not 0 <= time.time() - issued <= settings.session_max_age_seconds:
        return None
    return key_id, nonce, issued


def _logout_row(key_id: int) -> str:
    return f"dashboard-logout:{key_id}"


def revoke_sessions(session: Session, key_id: int) -> None:
    """Refuse from now on every session cookie of `key_id` issued until now (logout)."""
    row = session.get(JobRun, _logout_row(key_id)) or JobRun(name=_logout_row(key_id))
    row.last_started = row.last_finished = utcnow()
    row.last_status = "ok"
    session.add(row)
    session.flush()


def _revoked(session: Session, key_id: int, issued: float) -> bool:
    row = session.get(JobRun, _logout_row(key_id))
    return row is not None and row.last_started is not None and issued <= row.last_started.timestamp()


def current_user(request: Request, session: Session, settings: Settings) -> User | None:
    """The user behind the request's session cookie, or None (no, bad, expired cookie or revoked key)."""
    decoded = decode(settings, request.cookies.get(COOKIE))
    if decoded is None:
        return None
    key_id, nonce, issued = decoded
    row = keys_repo.by_id(session, key_id)
    if row is None or row.revoked_at is not None or _revoked(session, key_id, issued):
        return None
    principal = Principal(key_id=row.id, name=row.name, scopes=list(row.scopes))
    return User(principal, _csrf_for(settings, nonce))


def csrf_ok(user: User, submitted: object) -> bool:
    return isinstance(submitted, str) and hmac.compare_digest(submitted.encode(), user.csrf.encode())


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HTTP-only, SameSite=Strict, path /; Secure when the request came over HTTPS."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict"
    )


def set_session(response: Response, request: Request, settings: Settings, key_id: int) -> None:
    value = encode(settings, key_id)
    _set_cookie(response, request, COOKIE, value, settings.session_max_age_seconds)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def login_token(request: Request) -> str:
    """The login form's CSRF token: the double-submit cookie's value, or a new one."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    return existing if existing and len(existing) >= 20 else secrets.token_urlsafe(24)


def set_login_token(response: Response, request: Request, token: str) -> None:
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)


def login_token_ok(request: Request, submitted: object) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(submitted.encode(), cookie.encode())
