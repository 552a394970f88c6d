"""Request bodies past `max_body_bytes` are refused with 413 `payload_too_large`, in every service.

The gateway refuses them at the edge, but a service reached directly (zero trust) must not
buffer whatever it is sent either. Raw ASGI, inside the request middleware (so the 413 has a
request id, a metric and a log line):
- a declared Content-Length past the limit: answered at once, the body never read;
- a chunked body: counted as it is read; past the limit the guard answers 413 itself and stops
  the app (its exception unwinds the handler, whatever it was doing with the body);
- no body (no Content-Length, no Transfer-Encoding): passed through untouched.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msashop.chassis.errors import error_body
from msashop.chassis.metrics import errors_total

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class _Answered(Exception):
    """The guard sent the 413 while the app was reading: unwind the app."""


def _too_large(limit: int) -> JSONResponse:
    errors_total.labels(type="api", code="payload_too_large").inc()
    body = error_body("payload_too_large", f"request body is larger than {limit} bytes")
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None:
            if not declared.isdigit() or int(declared) <= self.max_bytes:
                await self.app(scope, receive, send)  # a bad length is the server's to refuse
                return
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit, seen = self.max_bytes, 0
        started = answered = False

        async def receive_counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not started:
                    answered = True
                    await _too_large(limit)(scope, receive, send)
                    raise _Answered
            return message

        async def send_unless_answered(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the app's own answer to the unwinding: the client has the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_counted, send_unless_answered)
        except _Answered:
            pass
        except Exception:
            if not answered:
                raise
