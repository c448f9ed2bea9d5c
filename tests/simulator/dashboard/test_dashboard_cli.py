"""``vending backend vendor --http``: the dashboard from the command line, its link printed with its token."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request

from tests.conftest import VENDING
from tests.simulator.cli.test_cli import vending


def test_a_bad_listen_address_is_named_before_anything_starts(tmp_path):
    for listen in ("localhost", "localhost:８０80", "localhost:²"):  # str.isdigit() took the last two: exit 70
        result = vending(
            "backend", "vendor", "--broker", "mqtt://127.0.0.1:9", "--db", str(tmp_path / "v.db"),
            "--key", str(tmp_path / "vendor.key"), "--machines", str(tmp_path), "--http", listen,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert f"--http: expected HOST:PORT such as 127.0.0.1:8080, got {listen!r}" in result.stderr
        assert not (tmp_path / "v.db").exists()


def test_the_backend_prints_a_working_dashboard_link(tmp_path):
    keys = tmp_path / "keys"
    assert vending("keys", "dev-set", "--dir", str(keys)).returncode == 0
    process = subprocess.Popen(
        [
            VENDING, "backend", "vendor", "--broker", "mqtt://127.0.0.1:9", "--db", str(tmp_path / "v.db"),
            "--key", str(keys / "vendor.key"), "--machines", str(keys / "machines"), "--http", "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        link = ""
        for line in process.stdout:
            if line.startswith("dashboard: "):
                link = line.split(" ", 1)[1].strip()
                break
        assert link.startswith("http://127.0.0.1:") and "?token=" in link
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the cookie, as a browser
        with browser.open(link, timeout=10) as page:
            assert page.status == 200 and b"Vending fleet" in page.read()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 130  # Ctrl-C, as the exit-code table says
