"""ASGI middleware: request metrics and one structured log line per request (no headers, no bodies), and
the last line of defence against an unexpected exception (a JSON 500 on a connection that stays usable)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InternalError
from service.ops.logging import get_logger
from service.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS
from service.ops.security import REQUEST_ID, send_error

log = get_logger("foresight.http")


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"code": 500, "recorded": False}
        request_id = uuid.uuid4().hex[:16]
        scope[REQUEST_ID] = request_id

        def record() -> None:
            """Count the request once, before its last byte leaves: a client that saw the answer sees it
            counted in the next scrape."""
            if state["recorded"]:
                return
            state["recorded"] = True
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(scope["method"], path, str(state["code"])).inc()
            HTTP_LATENCY.labels(scope["method"], path).observe(elapsed)
            log.info(
                "request", request_id=request_id, method=scope["method"], route=path, path=scope["path"],
                status=state["code"], duration_ms=round(elapsed * 1000, 2),
            )  # fmt: skip

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            record()


class ErrorGuard:
    """Turns an exception no handler answered into a JSON 500 (request id, security headers from the
    middleware outside) instead of Starlette's plain-text one, and swallows it, so the server keeps the
    keep-alive connection: the client's next request on it is answered. An exception after the answer
    started cannot be reported; it is logged and re-raised (the server then closes the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            log.error(
                "unhandled_error", request_id=scope.get(REQUEST_ID), error_type=type(error).__name__,
                path=scope.get("path"), exc_info=True,
            )  # fmt: skip
            if started:
                raise
            message = "internal error; the request id identifies it in the server log"
            await send_error(send, InternalError(message), scope)
