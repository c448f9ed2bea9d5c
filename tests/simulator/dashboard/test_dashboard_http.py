"""The dashboard's guard rails over real HTTP: its token, its buttons' checks, and what it never shows."""

from __future__ import annotations

import html
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from simulator.dashboard.app import CommandInputError, command_for
from simulator.dashboard.board import Board, SlotRow
from tests.simulator.dashboard.conftest import TOKEN, dashboard_on
from tests.support.reporting import Capture, attached_runner, sell, world  # noqa: F401 - fixture
from tests.support.waiting import eventually


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, cookie: str | None = None, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers={**(headers or {})})
    if cookie:
        request.add_header("Cookie", f"vending_dashboard={cookie}")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), html.unescape(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), html.unescape(error.read().decode())


def oversized_post(url: str, cookie: str) -> int:
    """The status of a POST that announces 100 MB and sends 4 KiB: the dashboard read all of a body
    into memory before it compared its length, so it waited for the other 100 MB (and would hold them)."""
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(str(where.hostname), where.port, timeout=10)
    try:
        connection.putrequest("POST", where.path)
        for name, value in (("Cookie", f"vending_dashboard={cookie}"), ("HX-Request", "true"),
                            ("Content-Length", str(100_000_000))):  # fmt: skip
            connection.putheader(name, value)
        connection.endheaders(b"slot=A1&count=" + b"1" * 4096)
        return connection.getresponse().status
    finally:
        connection.close()


def test_token_cookie_guards_every_page_and_buttons_need_htmx_and_fitting_input(world, tmp_path):  # noqa: F811
    capture = Capture().start(world.address)
    try:
        with attached_runner(world, tmp_path) as runner, dashboard_on(world, runner) as server:
            machine = runner.machine.controller.config.id
            for _ in range(6):  # down to the low-stock level: the machine reports its stock
                sell(runner, "A1", "lin")
            assert world.vendor is not None
            eventually(lambda: world.vendor.store.count("stock") == 1, what="the stock snapshot stored")
            eventually(lambda: world.vendor.store.count("sale") == 6, what="six sales stored")

            assert fetch(f"{server.url}/")[0] == 401
            assert fetch(f"{server.url}/events")[0] == 401
            assert fetch(f"{server.url}/?token=wrong")[0] == 401
            status, headers, _ = fetch(f"{server.url}/?token={TOKEN}")
            assert status == 303
            cookie = headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie

            status, _, page = fetch(f"{server.url}/", cookie=TOKEN)
            assert status == 200 and 'id="items-sold">6<' in page
            assert "//" not in "".join(line for line in page.splitlines() if "<script" in line), "scripts from a CDN"
            status, _, script = fetch(f"{server.url}/static/vendor/htmx.min.js")
            assert status == 200 and "htmx" in script

            # what the page never shows: pseudonyms, card numbers, profiles
            rows = world.vendor.store.execute("SELECT payload FROM reports WHERE kind = 'sale'")
            pseudonyms = {json.loads(p)["pseudonym"] for (p,) in rows}
            uids = {card.uid for card in runner.scenario.cards.values()}
            assert pseudonyms and not any(secret in page for secret in pseudonyms | uids)
            assert "student" not in page

            url = f"{server.url}/machines/{machine}/restock"
            form = b"slot=A1&count=10"
            assert fetch(url, TOKEN, form)[0] == 403, "a POST without htmx's header (a cross-site form)"
            assert fetch(url, None, form, {"HX-Request": "true"})[0] == 401
            assert oversized_post(url, TOKEN) == 413, "a form past its limit is refused before the rest arrives"
            for bad, reason in (
                (b"slot=Z9&count=1", "'Z9' is not a slot"),
                (b"slot=A1&count=11", "count: 11 is outside 0..10"),
                (b"slot=A1&count=ten", "count: 'ten' is not a whole number"),
                (b"slot=A1&count=1_0", "count: '1_0' is not a whole number"),  # int() read it as 10
            ):
                status, _, answer = fetch(url, TOKEN, bad, {"HX-Request": "true"})
                assert (status, reason in answer) == (400, True), answer
            status, _, answer = fetch(
                f"{server.url}/machines/{machine}/price", TOKEN, b"slot=A1&price=0", {"HX-Request": "true"}
            )
            assert status == 400 and "price: 0 is outside 1..100000" in answer
            assert not [t for t, _, _ in capture.messages if "/cmd/" in t], "a refused input was sent"

            status, _, answer = fetch(url, TOKEN, form, {"HX-Request": "true"})
            assert status == 200 and "sent restock" in answer
            eventually(lambda: [t for t, _, _ in capture.messages if t.endswith("/cmd/restock")], what="published")

            world.vendor.client.disconnect()  # paho would hold a QoS 1 command and send it once linked again
            eventually(lambda: not world.vendor.client.is_connected(), what="the backend's link down")
            status, _, answer = fetch(url, TOKEN, form, {"HX-Request": "true"})
            assert status == 503 and "no broker link right now; nothing sent" in answer, answer
            assert len(world.vendor.client._out_messages) == 0, "the command was queued for later"
    finally:
        capture.stop()


def board_with(*slots: SlotRow) -> Board:
    return Board(day=None, slots=list(slots))


@pytest.mark.parametrize(
    "machine,action,form,reason",
    [
        ("M2", "restock", {"slot": "A1", "count": "1"}, "machine 'M2' has reported no stock"),
        ("M1", "restock", {"count": "1"}, "slot: '' is not a slot of M1"),
        ("M1", "restock", {"slot": "A1", "count": "-1"}, "count: -1 is outside 0..8"),
        ("M1", "price", {"slot": "A1", "price": "100001"}, "price: 100001 is outside 1..100000"),
        ("M1", "explode", {"slot": "A1"}, "unknown action 'explode'"),
    ],
)
def test_a_button_input_that_does_not_fit_the_machine_is_refused(machine, action, form, reason):
    board = board_with(SlotRow("M1", "A1", "milk", 3, 8, 25, True))
    with pytest.raises(CommandInputError, match=reason):
        command_for(board, machine, action, form)


def test_a_fitting_input_becomes_the_machine_s_own_command():
    board = board_with(SlotRow("M1", "A1", "milk", 3, 8, 25, True))
    assert command_for(board, "M1", "restock", {"slot": "A1", "count": "8"}) == ("restock", {"slots": {"A1": 8}})
    assert command_for(board, "M1", "price", {"slot": "A1", "price": "30"}) == (
        "set_price",
        {"slot": "A1", "price": 30},
    )
