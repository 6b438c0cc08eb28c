"""Edge protections in one ASGI middleware: security headers on every answer, a body-size limit on every
route, bounded JSON (nesting depth, number length) before any parser runs, and token-bucket rate limits
(429 with Retry-After).

Rate-limit state is per process and in memory, on purpose: it needs no database round trip and no extra
service. With N replicas behind a load balancer a key may therefore send up to N times the configured
rate; size the limits per replica. A request is charged to the *verified* key (`key:<id>`), once the
auth dependency has checked it, or to the client address when it carries no key or a key that fails
verification: made-up tokens all share their sender's address bucket, so rotating them buys nothing.
Key and address buckets are kept apart, each at most `MAX_BUCKETS` (least recently used dropped), so a
flood from many addresses cannot evict the buckets of real keys. Requests without a bearer token, and
those to routes outside the API (`/v1`, `/api`), are charged by address here; API requests with a token
are charged by the auth dependency (`service/deps.py`). Probes (`/healthz`, `/readyz`, `/metrics`) are
never limited. Ingest routes have their own, higher, budget so a collector pushing at full speed is not
slowed by the limits meant for queries.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import ForesightError, InvalidInput, PayloadTooLarge, RateLimited
from service.ops.jsonguard import json_problem

MAX_BUCKETS = 10_000
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
INGEST_ROUTE = re.compile(r"^/v1/(telemetry|node-events|nodes/[^/]+/events)/?$")
API_PREFIXES = ("/v1/", "/api/")
# bodies the route reads itself and bounds itself (orjson first, the guard before any fallback)
RAW_BODY_ROUTES = frozenset({"/v1/telemetry"})
REQUEST_ID = "foresight.request_id"
CHARGED = "foresight.rate_charged"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


@dataclass
class Bucket:
    """Tokens left and when they were last counted (monotonic seconds)."""

    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets by key: `rate` tokens per second up to `burst`; one request costs one token."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = MAX_BUCKETS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.capacity = capacity
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend a token of `key`: 0 when allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self.buckets.pop(key, None) or Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self.buckets[key] = bucket
        if len(self.buckets) > self.capacity:
            self.buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def bearer_token(scope: Scope) -> bytes | None:
    """The bearer token of the request, if it sends one (unverified)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimiter:
    """The budgets of one process: API and ingest, each for verified keys and for client addresses."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        api = (settings.rate_limit_per_second, settings.rate_limit_burst)
        ingest = (settings.rate_limit_ingest_per_second, settings.rate_limit_ingest_burst)
        self.buckets = {
            (False, "key"): TokenBuckets(*api), (False, "addr"): TokenBuckets(*api),
            (True, "key"): TokenBuckets(*ingest), (True, "addr"): TokenBuckets(*ingest),
        }  # fmt: skip

    def charge(self, scope: Scope, key_id: int | None) -> None:
        """Spend a token of the verified key `key_id` (None: of the client address); RateLimited if none
        is left. Each request is charged once."""
        path: str = scope["path"]
        if not self.enabled or path in UNLIMITED_PATHS or scope.get(CHARGED):
            return
        scope[CHARGED] = True
        buckets = self.buckets[(bool(INGEST_ROUTE.match(path)), "key" if key_id is not None else "addr")]
        who = f"key {key_id}" if key_id is not None else f"client {client_address(scope)}"
        wait = buckets.take(str(key_id) if key_id is not None else client_address(scope))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"rate limit of {buckets.rate:g} requests/s (burst {buckets.burst:g}) exceeded for {who}; "
                f"retry after {retry} s",
                retry_after=retry,
            )

    def defers_to_auth(self, scope: Scope) -> bool:
        """True when the auth dependency charges this request (an API route and a token to verify)."""
        return scope["path"].startswith(API_PREFIXES) and bearer_token(scope) is not None


class SecurityMiddleware:
    """Headers, body limits and rate limits, outside routing so they hold for every route and error."""

    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        if not self.limiter.defers_to_auth(scope):
            try:
                self.limiter.charge(scope, None)
            except RateLimited as error:
                await send_error(send, error, scope)
                return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_error(send, self._too_large(f"body of {declared} bytes"), scope)
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            guarded = _is_json(scope) and scope["path"] not in RAW_BODY_ROUTES
            if declared is None or guarded:
                buffered = await self._read_bounded(receive)
                if buffered is None:
                    await send_error(send, self._too_large("body"), scope)
                    return
                if guarded and (problem := json_problem(_joined(buffered))):
                    details = [{"field": "body", "problem": problem}]
                    await send_error(send, InvalidInput(f"body: {problem}", details=details), scope)
                    return
                receive = replay(buffered, receive)
        await self.app(scope, receive, send)

    def _too_large(self, what: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"{what} exceeds the limit of {self.max_body_bytes} bytes; send smaller requests"
        )

    async def _read_bounded(self, receive: Receive) -> list[Message] | None:
        """A body without Content-Length (chunked), read up to the limit: its messages, or None if over."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return messages


def _is_json(scope: Scope) -> bool:
    """A body FastAPI would parse as JSON: a JSON content type, or none at all; not compressed."""
    content_type = b""
    for name, value in scope.get("headers", []):
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
        if name == b"content-type":
            content_type = value.lower()
    return not content_type or b"json" in content_type


def _joined(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the buffered messages first, then defers to the real one."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def with_security_headers(send: Send) -> Send:
    """Add the security headers (and `Cache-Control: no-store` unless the route chose one) to the answer."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
            if b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message["headers"] = headers
        await send(message)

    return sending


def error_body(error: ForesightError, scope: Scope) -> dict[str, object]:
    """The service's JSON error body, with the request id the answer's X-Request-ID header carries."""
    body = error.to_body()
    if request_id := scope.get(REQUEST_ID):
        body["error"]["request_id"] = request_id
    return body


async def send_error(send: Send, error: ForesightError, scope: Scope) -> None:
    """Answer with the service's usual JSON error body, before the request reaches a route."""
    body = orjson.dumps(error_body(error, scope))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((name.lower().encode(), value.encode()) for name, value in error.headers().items())
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
