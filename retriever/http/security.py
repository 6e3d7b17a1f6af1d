"""Who may call, and how much they may send: bearer-token checks and the request-size limit.

Policy (spec 005): every write needs the token; on a non-loopback bind every request does (the
server refuses to start there without one). A server started without a token serves reads only.
`/health` stays open so a supervisor can probe the process without holding the secret.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

__all__ = [
    "LOOPBACK_HOSTS",
    "AccessPolicy",
    "BodySizeLimit",
    "TokenGuard",
    "bearer_token",
    "is_loopback",
]

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class AccessPolicy:
    """The token a server holds and whether reads need it too."""

    def __init__(self, token: str | None, protect_reads: bool = False):
        self.token = token or None
        self.protect_reads = protect_reads

    def refusal(self, authorization: str | None, *, write: bool) -> tuple[int, str, str] | None:
        """None when allowed, else (status, code, message) explaining what is missing."""
        if not write and not self.protect_reads:
            return None
        if self.token is None:
            return (
                403,
                "writes_disabled",
                "this server has no API token, so it is read-only; "
                "restart it with SPECMEM_API_TOKEN set to allow writes",
            )
        given = bearer_token(authorization)
        if given is None:
            return 401, "unauthorized", "send the API token as 'Authorization: Bearer <token>'"
        # Constant time, so response timing does not reveal how much of a guess was right.
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return 401, "unauthorized", "the API token is wrong"
        return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers=()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class TokenGuard:
    """ASGI wrapper for a mounted app (the MCP endpoint) that FastAPI dependencies do not reach.

    Every MCP request is a POST whether it reads or writes, so the mounted endpoint needs the
    token whenever the server has one; without a token it serves a read-only tool set.
    """

    def __init__(self, app: ASGIApp, policy: AccessPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            write = self.policy.token is not None
            refusal = self.policy.refusal(authorization, write=write)
            if refusal:
                status, code, message = refusal
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await _send_json(send, status, {"error": {"code": code, "message": message}}, extra)
                return
        await self.app(scope, receive, send)


class _TooLarge(HTTPException):
    """An HTTPException, so the app's own error handler answers 413 even mid-request."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is over the {limit}-byte limit")


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body is over the {self.limit}-byte limit"
        await _send_json(send, 413, {"error": {"code": "request_too_large", "message": message}})
