"""The operator's web dashboard: one page, live over Server-Sent Events, buttons that send signed commands.

Starlette serves the page, the fragments and the vendored scripts (htmx, its SSE extension and
Chart.js, from the package: no CDN). ``/events`` reads the board about once a second and sends only
the fragments that changed, so an idle page costs one small query per second.

Who may use it: whoever holds the token printed when the dashboard starts (the Jupyter way). Opening
``/?token=...`` once sets an HttpOnly, SameSite=Strict cookie; every page, stream and button needs
it. Buttons also need htmx's ``HX-Request`` header, which a cross-site form cannot send, and the
inputs are checked against the machine's last reported slots before anything is signed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import escape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from firmware.app.command_gate import Refused
from firmware.domain import typed_integer
from simulator.dashboard.board import Board
from simulator.dashboard.operator import NotSent, Operator

COOKIE = "vending_dashboard"
FRAGMENTS = ("totals", "machines", "alerts", "stock", "commands")
MAX_FORM_BYTES = 2048
MAX_PRICE = 100_000
STATIC = Path(__file__).with_name("static")


def _environment() -> Environment:
    return Environment(loader=PackageLoader("simulator.dashboard", "templates"), autoescape=select_autoescape())


class CommandInputError(ValueError):
    """A button's input that does not fit the machine: answered 400, nothing signed or sent."""


def render_fragments(env: Environment, board: Board, commands: bool) -> dict[str, str]:
    """Every live part of the page, by SSE event name."""
    context = {"board": board, "commands": commands}
    fragments = {name: env.get_template(f"_{name}.html").render(context) for name in FRAGMENTS}
    fragments["charts"] = escape(json.dumps(board.chart_data()))  # HTML text; the script reads textContent
    return fragments


def sse_event(name: str, data: str) -> str:
    """One SSE event; a multi-line fragment becomes several ``data:`` lines, joined again by the browser."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"


class SharedBoard:
    """The board read once per ``fresh_s`` however many pages and streams ask for it.

    Each open stream read the vendor's database every second on its own: twenty tabs, or a script
    holding twenty streams, were twenty reads a second of a district's day, in the process (and under
    the lock) that stores the machines' reports. Now one read serves everyone who asks within the window.
    """

    def __init__(self, read: Callable[[], Board], fresh_s: float) -> None:
        self._read = read
        self._fresh_s = fresh_s
        self._board: Board | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()  # bound to the server's loop on first use

    async def get(self) -> Board:
        async with self._lock:
            if self._board is None or time.monotonic() - self._read_at >= self._fresh_s:
                self._board = await asyncio.to_thread(self._read)
                self._read_at = time.monotonic()
            return self._board


def create_app(
    read: Callable[[], Board],
    token: str,
    operator: Operator | None = None,
    interval_s: float = 1.0,
) -> Starlette:
    """The dashboard over ``read`` (a fresh board each call); buttons only when an ``operator`` can sign."""
    env = _environment()

    def allowed(request: Request) -> bool:
        return same_token(request.cookies.get(COOKIE, ""), token)

    def refused() -> Response:
        return PlainTextResponse(
            "This dashboard needs its token: open the link 'vending backend vendor --http' printed.", status_code=401
        )

    shared = SharedBoard(read, interval_s)

    async def board_now() -> Board:
        return await shared.get()

    async def index(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not same_token(given, token):
                return refused()
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if not allowed(request):
            return refused()
        board = await board_now()
        fragments = render_fragments(env, board, operator is not None)
        page = env.get_template("index.html").render(
            board=board, commands=operator is not None, charts=fragments["charts"]
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        if not allowed(request):
            return refused()

        async def stream() -> AsyncIterator[str]:
            sent: dict[str, str] = {}
            yield "retry: 2000\n\n"
            while True:
                fragments = render_fragments(env, await board_now(), operator is not None)
                for name, data in fragments.items():
                    if sent.get(name) != data:
                        sent[name] = data
                        yield sse_event(name, data)
                await asyncio.sleep(interval_s)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def command(request: Request) -> Response:
        if not allowed(request):
            return refused()
        if operator is None:
            return PlainTextResponse("this dashboard has no signing key: read-only", status_code=403)
        if request.headers.get("HX-Request") != "true":
            return PlainTextResponse("commands come from the dashboard's own buttons", status_code=403)
        body = await form_body(request)
        if body is None:
            return PlainTextResponse(f"form larger than {MAX_FORM_BYTES} bytes", status_code=413)
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        machine, action = request.path_params["machine"], request.path_params["action"]
        try:
            name, fields = command_for(await board_now(), machine, action, form)
        except CommandInputError as exc:
            return HTMLResponse(f'<p class="refused">{escape(str(exc))}</p>', status_code=400)
        try:
            command_id = await asyncio.to_thread(operator.send, machine, name, fields)
        except NotSent as exc:
            return HTMLResponse(f'<p class="refused">{escape(str(exc))}</p>', status_code=503)
        except Refused as exc:  # what the machine would refuse, found before signing: nothing sent
            return HTMLResponse(f'<p class="refused">{escape(str(exc))}</p>', status_code=400)
        text = f"sent {name} {json.dumps(fields)} to {machine} ({command_id}); the answer shows under Last commands"
        return HTMLResponse(f'<p class="sent">{escape(text)}</p>')

    return Starlette(
        routes=[
            Route("/", index),
            Route("/events", events),
            Route("/machines/{machine}/{action}", command, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )


async def form_body(request: Request) -> bytes | None:
    """The request's body, or None past ``MAX_FORM_BYTES``, read only that far.

    ``request.body()`` read it all into memory first, however large, and only then compared its length.
    """
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_FORM_BYTES:
            return None
    return bytes(received)


def same_token(given: str, token: str) -> bool:
    """Constant-time, on bytes: any text (non-ASCII included) is a yes or a no, never an error."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),  # no clickjacking of the buttons
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the token never leaves in a Referer
]


class SecurityHeaders:
    """OWASP's headers on every response, pages, stream and static files alike (an ASGI wrapper)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def command_for(board: Board, machine: str, action: str, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The command a button asks for, checked against the machine's last reported slots."""
    slots = {s.slot: s for s in board.slots if s.machine == machine}
    if not slots:
        raise CommandInputError(f"machine {machine!r} has reported no stock: nothing to change")
    slot = slots.get(form.get("slot", ""))
    if slot is None:
        raise CommandInputError(f"slot: {form.get('slot', '')!r} is not a slot of {machine}")
    if action == "restock":
        count = _integer(form, "count", 0, slot.capacity)
        return "restock", {"slots": {slot.slot: count}}
    if action == "price":
        return "set_price", {"slot": slot.slot, "price": _integer(form, "price", 1, MAX_PRICE)}
    raise CommandInputError(f"unknown action {action!r}: restock or price")


def _integer(form: dict[str, str], name: str, low: int, high: int) -> int:
    text = form.get(name, "")
    if (value := typed_integer(text)) is None:
        raise CommandInputError(f"{name}: {text[:20]!r} is not a whole number")
    if not low <= value <= high:
        raise CommandInputError(f"{name}: {value} is outside {low}..{high}")
    return value
