"""Who may call, and how much they may send or hold: bearer-token checks, the Host check on
loopback, the request-size limit and the cap on live MCP sessions.

Policy (specs 070, 074): every write needs the token; on a non-loopback bind every request does
(the server refuses to start there without one). Loopback is judged by address, never by how a
name is spelled. A token no client could send back (whitespace, non-ASCII) or that is short enough
to guess is refused before the server starts. A server started without a token serves reads only.
`/health` stays open so a supervisor can probe the process without holding the secret.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.exceptions import HTTPException

from .errors import TrackedSend

__all__ = [
    "LOOPBACK_NAMES",
    "MAX_MCP_SESSIONS",
    "MCP_SESSION_IDLE_TIMEOUT",
    "MIN_TOKEN_LENGTH",
    "AccessPolicy",
    "BodySizeLimit",
    "LoopbackHostGuard",
    "MCPSessionLimit",
    "TokenGuard",
    "bearer_token",
    "is_loopback",
    "is_loopback_address",
    "token_problem",
]

# Names a browser and the resolver both keep on the machine (RFC 6761); the Host check accepts
# them and every loopback address literal.
LOOPBACK_NAMES = frozenset({"localhost"})
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# 16 characters is `secrets.token_hex(8)`, 64 random bits: out of reach of online guessing even
# with no rate limit. Length cannot prove randomness, but it refuses the guessable ones ("t",
# "s3cret", "changeme") that otherwise start a server anyone can write to.
MIN_TOKEN_LENGTH = 16

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback_address(text: str) -> bool:
    """Whether `text` is an IP address literal (IPv6 may be bracketed) on the loopback network:
    any of 127.0.0.0/8, ::1, or an IPv4-mapped ::ffff:127.x.y.z."""
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback(host: str) -> bool:
    """Whether binding `host` listens on loopback only: an address literal is judged as it is; a
    name counts only if every address it resolves to is loopback (`localhost` does,
    `127.example.com` does not, and neither does a name that does not resolve)."""
    if is_loopback_address(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False  # an address, and not a loopback one
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(is_loopback_address(str(a).split("%")[0]) for a in addresses)


def token_problem(token: str | None, min_length: int = MIN_TOKEN_LENGTH) -> str | None:
    """Why `token` cannot protect a server, or None when it can (or when there is none).

    A client sends it back in an `Authorization` header, which carries visible ASCII only and
    loses surrounding whitespace; anything else could never authenticate. The token itself is
    never part of the message.
    """
    if token is None:
        return None
    if token != token.strip():
        return "SPECMEM_API_TOKEN starts or ends with whitespace (a stray newline?); remove it"
    bad = sorted({repr(ch) for ch in token if not "!" <= ch <= "~"})
    if bad:
        return (
            "SPECMEM_API_TOKEN may hold only visible ASCII characters (a client sends it in an "
            f"HTTP header); it has {', '.join(bad[:5])}"
        )
    if len(token) < min_length:
        return (
            f"SPECMEM_API_TOKEN is {len(token)} character{'s' * (len(token) != 1)} long; use at "
            f"least {min_length}, "
            "for example: python3 -c 'import secrets; print(secrets.token_hex(24))'"
        )
    return None


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


class LoopbackHostGuard:
    """On a loopback bind, answer only requests addressed to the machine itself.

    A web page that reaches the server through DNS rebinding sends its own domain as the Host
    (and its own Origin), so both must name loopback: an address literal on the loopback network
    (any of 127.0.0.0/8 and ::1, so `--host 127.0.0.2` works), `localhost`, or the name the
    server was bound by. Otherwise 400 `invalid_host` or 403 `invalid_origin`.
    """

    def __init__(self, app: ASGIApp, names: Iterable[str] = LOOPBACK_NAMES):
        self.app = app
        self.names = {name.lower().rstrip(".") for name in names}

    def allows(self, host: str) -> bool:
        host = host.strip().lower()
        if host.startswith("["):
            host = host[: host.find("]") + 1] if "]" in host else host
        elif host.count(":") == 1:
            host = host.partition(":")[0]
        return is_loopback_address(host) or host.rstrip(".") in self.names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin", b"").decode("latin-1")
            if not self.allows(host):
                message = f"Host {host[:100]!r} is not this server's loopback address"
                await _send_json(send, 400, {"error": {"code": "invalid_host", "message": message}})
                return
            if origin and not self.allows(_origin_host(origin)):
                message = f"Origin {origin[:100]!r} is not this server's loopback address"
                await _send_json(
                    send, 403, {"error": {"code": "invalid_origin", "message": message}}
                )
                return
        await self.app(scope, receive, send)


def _origin_host(origin: str) -> str:
    """The host[:port] of an Origin header; "" for `null` or anything unparsable."""
    try:
        return urlsplit(origin).netloc
    except ValueError:
        return ""


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
        tracked = TrackedSend(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, limited_receive, tracked)
        except _TooLarge:
            if not tracked.started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"request body is over the {self.limit}-byte limit"
        await _send_json(send, 413, {"error": {"code": "request_too_large", "message": message}})


# Figures and reasons: spec 075. An idle session holds a server task and its streams (~40 KiB
# measured); 100 is far more agents than one specs folder has, and bounds what a burst of sessions
# that are never closed can hold. Idle sessions end after 10 minutes instead of the SDK's 30.
MAX_MCP_SESSIONS = 100
MCP_SESSION_IDLE_TIMEOUT = 10 * 60.0


class MCPSessionLimit:
    """At most `limit` live MCP sessions; a new one takes the place of the least recently used
    idle one, so a burst of sessions that are never closed cannot lock new clients out.

    The MCP SDK's own cap answers 503 until a session times out (30 minutes by default). Here
    sessions are tracked from the answers that open them (`mcp-session-id`); one is idle when
    no request of its own is in flight (an open GET stream counts as one). Evicting a session is
    a DELETE for it through the SDK, as its client could send: that client's next request gets
    404 and, as the protocol says, initializes again. Only when every session is busy does a
    new one get 503, as a JSON-RPC error with `Retry-After`. A session the SDK already ended is
    dropped from the count when a request for it answers 404, or when it is chosen for eviction.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_MCP_SESSIONS):
        self.app = app
        self.limit = limit
        self._in_flight: dict[str, int] = {}  # session id -> requests in flight; LRU first
        self._opening = 0  # admitted requests without a session id whose answer is pending
        self._lock = anyio.Lock()

    @property
    def sessions(self) -> int:
        return len(self._in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        session = headers.get(b"mcp-session-id", b"").decode("latin-1")
        if session in self._in_flight:
            await self._serve_session(session, scope, receive, send)
        elif not session and scope.get("method") == "POST":
            await self._open_session(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve_session(self, session: str, scope: Scope, receive: Receive, send: Send):
        self._in_flight[session] = self._in_flight.pop(session) + 1  # now most recently used
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if session in self._in_flight:
                self._in_flight[session] -= 1
                ended = status == 404 or (scope.get("method") == "DELETE" and status < 300)
                if ended:
                    del self._in_flight[session]

    async def _open_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._lock:
            admitted = await self._make_room(scope)
            if admitted:
                self._opening += 1
        if not admitted:
            await self._refuse(send)
            return
        opened: str | None = None
        pending = True

        async def watch(message: Message) -> None:
            nonlocal opened, pending
            if message["type"] == "http.response.start" and pending:
                pending = False
                self._opening -= 1
                found = dict(message.get("headers") or []).get(b"mcp-session-id")
                if found and message["status"] < 400:
                    opened = found.decode("latin-1")
                    self._in_flight[opened] = 1
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if pending:
                self._opening -= 1
            if opened is not None and opened in self._in_flight:
                self._in_flight[opened] -= 1

    async def _make_room(self, scope: Scope) -> bool:
        """Evict idle sessions, least recently used first, until one more fits."""
        while len(self._in_flight) + self._opening >= self.limit:
            idle = next((s for s, n in self._in_flight.items() if n == 0), None)
            if idle is None:
                return False
            del self._in_flight[idle]
            await self._end_session(idle, scope)
        return True

    async def _end_session(self, session: str, scope: Scope) -> None:
        """DELETE `session` through the SDK, as its client would (same Host as this request)."""
        host = dict(scope.get("headers") or []).get(b"host", b"localhost")
        delete_scope = {
            **{k: v for k, v in scope.items() if k not in ("headers", "state")},
            "method": "DELETE",
            "query_string": b"",
            "headers": [(b"host", host), (b"mcp-session-id", session.encode("latin-1"))],
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

        async def discard(message: Message) -> None:
            return None

        await self.app(delete_scope, receive, discard)

    async def _refuse(self, send: Send) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32000,
                "message": f"all {self.limit} MCP sessions are busy; retry shortly",
            },
        }
        await _send_json(send, 503, body, [(b"retry-after", b"5")])
