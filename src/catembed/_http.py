"""HTTP plumbing of the server: OpenAI-style error bodies, exception handlers, the ASGI
middleware that bounds request bodies and counts requests in flight, and the listening
sockets.

Every error leaves as ``{"error": {"message", "type", "code", "param"}}`` with its status.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catembed.errors import ConfigError, first_line

logger = logging.getLogger(__name__)

# Fields whose type is a union: one plain message instead of one error per union member.
FIELD_HINTS = {
    "input": "a string or a non-empty list of strings",
    "values": "a non-empty list of strings (null for a missing cell)",
    "a": "a non-empty list of strings",
    "b": "a non-empty list of strings",
}


@dataclass
class InFlight:
    """How many HTTP requests are being answered now."""

    count: int = 0


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, status: int, message: str, code: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def _error_type(status: int) -> str:
    return {
        404: "not_found_error",
        413: "request_too_large",
        503: "service_unavailable_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_response(
    status: int,
    message: str,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {
        "error": {"message": message, "type": _error_type(status), "code": code, "param": param}
    }
    return JSONResponse(body, status_code=status, headers=headers)


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


class RequestGuard:
    """ASGI middleware: counts requests in flight, rejects bodies over ``max_body_bytes``,
    from Content-Length before reading and while streaming (chunked bodies), with a 413, and
    stops a request whose client disconnects once its body is read."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, in_flight: InFlight) -> None:
        self.app, self.max_body_bytes, self.in_flight = app, max_body_bytes, in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, str(_BodyTooLarge(limit).detail), "body_too_large")(
                scope, receive, send
            )
            return
        received = 0
        started = answered = gone = False
        handler = asyncio.current_task()
        watcher: asyncio.Task[None] | None = None

        async def watch_disconnect() -> None:
            # uvicorn lets a handler run on when its client goes away: stop it, so that the
            # batcher drops its texts instead of encoding them for nobody.
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not answered and handler is not None:
                gone = True
                handler.cancel()

        async def limited_receive() -> Message:
            nonlocal received, watcher
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
                if not message.get("more_body", False) and watcher is None:
                    watcher = asyncio.create_task(watch_disconnect())  # the body is all read
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started, answered
            started = started or message["type"] == "http.response.start"
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # uvicorn's receive says http.disconnect from now on
            await send(message)

        self.in_flight.count += 1
        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge as error:
            if started:
                raise
            await error_response(413, str(error.detail), "body_too_large")(scope, receive, send)
        except asyncio.CancelledError:  # the client went away, or graceful shutdown timed out
            if gone:
                return  # no one to answer
            if started:
                raise
            message = "the server stopped before this request was answered; retry"
            await error_response(503, message, "server_shutting_down")(scope, receive, send)
        finally:
            if watcher is not None:
                watcher.cancel()
            self.in_flight.count -= 1


def add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return error_response(error.status, error.message, error.code, error.param)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        cause = error.__cause__  # why json.loads failed, where FastAPI answers a bare 400
        if isinstance(cause, UnicodeDecodeError):
            message = (
                f"request body is not valid JSON: not UTF-8 "
                f"(byte 0x{cause.object[cause.start]:02x} at position {cause.start})"
            )
            return error_response(422, message, "invalid_json")
        if isinstance(cause, RecursionError):
            return error_response(422, "request body is nested too deeply", "invalid_json")
        if isinstance(cause, ValueError):  # Python's limit on an integer's digits
            message = "request body is not valid JSON here: a number has too many digits"
            return error_response(422, message, "invalid_json")
        status = error.status_code
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        message = error.detail if status != 404 else f"no route {request.url.path}"
        kind = code.get(status, "http_error")
        return error_response(status, str(message), kind, headers=error.headers)  # 405: Allow

    async def invalid_body(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error_response(422, "request body is not valid JSON", "invalid_json")
        content_type = request.headers.get("content-type", "")
        if any(p.get("loc") == ("body",) for p in problems) and "json" not in content_type:
            message = "send a JSON object with Content-Type: application/json"
            return error_response(422, message, "invalid_request_body")
        parts: dict[str, str] = {}  # one message per field
        for problem in problems:
            loc = [str(x) for x in problem.get("loc", ())[1:]]
            field = loc[0] if loc else "body"
            message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
            named = re.match(r"(\w+): ", message)  # a check across fields names its field
            if field in FIELD_HINTS:
                parts.setdefault(field, f"{field}: expected {FIELD_HINTS[field]}")
            elif not loc and named:
                parts.setdefault(named[1], message)
            else:
                parts.setdefault(".".join(loc) or "body", message)
        messages = [m if m.startswith(f"{k}:") else f"{k}: {m}" for k, m in parts.items()]
        param = next(iter(parts)) if parts else None
        return error_response(422, "; ".join(messages[:5]), "invalid_request_body", param)

    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal server error", "internal_error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(Exception, unexpected)


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address of ``host`` on ``port``, as uvicorn would bind them;
    :class:`~catembed.errors.ConfigError` for a port out of range, an address that does not
    resolve or one that is in use."""
    where = f"{host}:{port}"
    if not 0 <= port <= 65535:
        raise ConfigError(f"cannot listen on {where}: the port must be in 0..65535")
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(f"cannot listen on {where}: {_reason(error)}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # a family this machine lacks (IPv6): skipped, as asyncio does
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one free port for all, not one per address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise ConfigError(f"cannot listen on {where}: {_reason(error)}") from None
    return sockets


def _reason(error: BaseException) -> str:
    strerror = getattr(error, "strerror", None)
    return strerror if isinstance(strerror, str) and strerror else first_line(error)
