"""Edge protections in one ASGI middleware: security headers on every answer, a body-size limit on every
route, and per-key token-bucket rate limits (429 with Retry-After).

Rate-limit state is per process and in memory, on purpose: it needs no database round trip and no extra
service. With N replicas behind a load balancer a key may therefore send up to N times the configured
rate; size the limits per replica. A bucket is keyed by a SHA-256 of the bearer token (the secret itself
is never kept), or by the client address when there is no token; at most `MAX_BUCKETS` buckets are kept
(least recently used dropped), so a flood of made-up tokens cannot grow memory without bound. Probes
(`/healthz`, `/readyz`, `/metrics`) are never limited. Ingest routes have their own, higher, budget so a
collector pushing at full speed is not slowed by the limits meant for queries.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import ForesightError, PayloadTooLarge, RateLimited

MAX_BUCKETS = 10_000
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
INGEST_ROUTE = re.compile(r"^/v1/(telemetry|node-events|nodes/[^/]+/events)/?$")
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


def client_key(scope: Scope) -> str:
    """Who is asking: a hash of the bearer token, or the client address when there is none."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return "key:" + hashlib.sha256(token.strip()).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class SecurityMiddleware:
    """Headers, body limit and rate limits, outside routing so they hold for every route and error."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.enabled = settings.rate_limit_enabled
        self.api = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.ingest = TokenBuckets(settings.rate_limit_ingest_per_second, settings.rate_limit_ingest_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        path: str = scope["path"]
        if self.enabled and path not in UNLIMITED_PATHS:
            buckets = self.ingest if INGEST_ROUTE.match(path) else self.api
            wait = buckets.take(client_key(scope))
            if wait > 0:
                retry = max(1, math.ceil(wait))
                error = RateLimited(
                    f"rate limit of {buckets.rate:g} requests/s (burst {buckets.burst:g}) exceeded for this "
                    f"key; retry after {retry} s",
                    retry_after=retry,
                )
                await send_error(send, error)
                return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_error(send, self._too_large(f"body of {declared} bytes"))
            return
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            buffered = await self._read_bounded(receive)
            if buffered is None:
                await send_error(send, self._too_large("body"))
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


async def send_error(send: Send, error: ForesightError) -> None:
    """Answer with the service's usual JSON error body, before the request reaches a route."""
    body = orjson.dumps(error.to_body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((name.lower().encode(), value.encode()) for name, value in error.headers().items())
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
