"""A school morning through the serve loop with a PN532 on a pty equals the same morning on the virtual reader."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from firmware.app.keypad import INPUT_HELP
from firmware.controller.records import Transaction
from simulator.emulators.devices import PN532Device
from simulator.scenarios import load_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT, VENDING
from tests.simulator.emulators.conftest import outcome, serve_loop
from tests.support.waiting import eventually

DECIDED = ("vended", "denied", "refunded")
MORNING = ROOT / "configs/scenarios/normal-morning.yaml"
DAY = [
    ("A1", "amy"),
    ("D1", "ben"),
    ("E3", "lin"),
    ("C1", "amy"),
    ("E1", "ben"),
    ("B3", "amy"),
    ("A2", "lin"),
    ("E3", "amy"),
    ("A3", "ben"),
    ("B1", "lin"),
]


def virtual_day(tmp: Path, closing: Callable[[Any], Any]) -> dict:
    runner = closing(ScenarioRunner(load_scenario(MORNING), tmp / "virtual"))
    runner.start()
    for slot, card in DAY:
        runner.machine.controller.dispatch("select", slot)
        runner.machine.controller.present(runner.taps.tap(runner.scenario.cards[card].uid, card))
        if runner.machine.controller.state.value != "idle":
            runner.machine.controller.dispatch("cancel")
    return summary(runner)


def summary(runner: ScenarioRunner) -> dict:
    wallet = runner.machine.books.wallet
    return {
        "sales": runner.result.sales,
        "revenue": runner.result.revenue,
        "denials": dict(runner.result.denials),
        "balances": {name: wallet.balance(card.uid).amount for name, card in runner.scenario.cards.items()},
        "stock": runner.machine.books.inventory.stock(),
    }


def pn532_day(tmp: Path, closing: Callable[[Any], Any]) -> dict:
    device = closing(PN532Device(tmp / "reader0").start())
    runner = closing(ScenarioRunner(load_scenario(MORNING), tmp / "pn532"))
    runner.start()
    controller = runner.machine.controller
    with serve_loop(runner, f"pn532:{tmp / 'reader0'}?debounce=0.05") as loop:
        for index, (slot, card) in enumerate(DAY):
            for _attempt in range(3):  # a reader that drops out under CPU load cancels the visit: do it again
                before = controller.last_transaction
                eventually(lambda: controller.state.value == "idle", what=f"idle before visit {index}")
                loop.line(f"select {slot}")
                eventually(lambda: controller.state.value == "awaiting_card", what=f"selection {index}")
                device.tap(runner.scenario.cards[card].uid)

                def settled(before: Transaction | None = before) -> bool:
                    return controller.last_transaction is not before or controller.state.value == "out_of_order"

                eventually(settled, what=f"visit {index} decided")
                if outcome(controller)[0] in DECIDED and controller.last_transaction is not before:
                    break
            if controller.state.value != "idle":
                loop.line("cancel")
                eventually(lambda: controller.state.value == "idle", what="cancelled")
        return summary(runner)


def test_a_day_through_the_pn532_on_a_pty_equals_the_virtual_reader(tmp_path, closing):
    virtual = virtual_day(tmp_path, closing)
    assert virtual["sales"] >= 6 and virtual["denials"]  # the day has sales and refusals (the tea, a staff pen)
    assert pn532_day(tmp_path, closing) == virtual


class ServeProcess:
    """`vending serve` as a child process; ``stop`` kills it if the test did not make it quit."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_serve(tmp_path: Path, closing: Callable[[Any], Any], *extra: str) -> tuple[subprocess.Popen, list[dict]]:
    cards = tmp_path / "cards.yaml"
    cards.write_text('cards:\n  amy: {uid: "04A1B2C3D4E5F6", profile: student, balance: 100}\n')
    return spawn_serve(tmp_path, closing, "--cards", str(cards), *extra)


def spawn_serve(tmp_path: Path, closing: Callable[[Any], Any], *extra: str) -> tuple[subprocess.Popen, list[dict]]:
    """`vending serve` of the demo machine on the PN532 at tmp_path/reader0, its JSON events collected."""
    serve = subprocess.Popen(
        [
            VENDING,
            "serve",
            "--machine",
            str(ROOT / "configs/machines/demo.yaml"),
            "--reader",
            f"pn532:{tmp_path / 'reader0'}",
            "--json",
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # the default state dir, per test; a host clock in UTC, where the machine's zone is Taipei's
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state"), "TZ": "UTC"},
    )
    closing(ServeProcess(serve))
    events: list[dict] = []
    assert serve.stdout is not None
    stdout = serve.stdout
    threading.Thread(target=lambda: events.extend(json.loads(line) for line in stdout), daemon=True).start()
    eventually(lambda: any(e["event"] == "power_on" for e in events), what="serve started")
    return serve, events


def keypad(serve: subprocess.Popen, line: str) -> None:
    assert serve.stdin is not None
    serve.stdin.write(line + "\n")
    serve.stdin.flush()


def test_vending_serve_sells_through_an_emulated_pn532(tmp_path, closing):
    """The real command: `vending serve` reads an emulated PN532 through a --link path; keypad on stdin."""
    device = closing(PN532Device(tmp_path / "reader0").start())
    serve, events = start_serve(tmp_path, closing, "-v")  # -v: the reader's INFO lines, checked below
    keypad(serve, "privacy")
    notice = eventually(lambda: [e for e in events if e["event"] == "display" and e.get("key") == "privacy"])
    assert "ask the school" in notice[0]["en"] and "請洽學校" in notice[0]["zh"]
    keypad(serve, "select A1")
    eventually(lambda: any(e["event"] == "selected" for e in events), what="selection")
    device.tap("04A1B2C3D4E5F6")
    eventually(lambda: any(e["event"] == "vended" for e in events), what="a sale")
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    assert serve.stderr is not None
    stderr = serve.stderr.read()
    assert "PN532 v1.6" in stderr and "card presented" in stderr
    everything = stderr + json.dumps(events)
    assert "04A1B2C3D4E5F6" not in everything and str(int("04A1B2C3D4E5F6", 16)) not in everything


def test_vending_serve_reports_to_a_broker(tmp_path, closing):
    """`vending serve` on the deployment's broker (TLS, a certificate per party, ACLs): the signed sale
    reaches the vendor; `vending cmd send` with the vendor's certificate changes a price, and the
    school's lockout goes through the school's own broker account."""
    from simulator.scenarios.reporting_world import ReportingWorld
    from tests.support.reporting import require_mosquitto

    require_mosquitto()
    world = closing(ReportingWorld(tmp_path / "world", broker="mosquitto").start())
    keys = world.keys
    keys.machine("TPE-DAAN-JH-01")  # enrolled at the backends; serve signs with the same key file
    device = closing(PN532Device(tmp_path / "reader0").start())

    def connection(party: str) -> list[str]:
        known = ("vendor-ops", "school-ops")  # a party's tools have a certificate of their own: one per connection
        address = world.party_address(party) if party in known else world.machine_address(party)
        assert address.ca_file and address.cert_file and address.key_file
        url = f"mqtts://127.0.0.1:{address.port}"
        return ["--broker", url, "--ca", address.ca_file, "--cert", address.cert_file, "--cert-key", address.key_file]

    identity = keys.directory / "machines/TPE-DAAN-JH-01.key"
    serve, events = start_serve(
        tmp_path, closing, *connection("TPE-DAAN-JH-01"), "--trust", str(keys.directory), "--identity", str(identity)
    )
    keypad(serve, "select A1")
    eventually(lambda: any(e["event"] == "selected" for e in events), what="selection")
    device.tap("04A1B2C3D4E5F6")
    eventually(lambda: world.vendor.store.count("sale") == 1, what="the sale at the vendor")

    def cmd(party: str, *words: str, key: Path | None = None) -> subprocess.CompletedProcess:
        send = [VENDING, "cmd", "send", *words[:1], "--key", str(key or keys.directory / party)]
        identity = {"vendor.key": "vendor-ops", "school.key": "school-ops"}[party]
        send += ["--machine", "TPE-DAAN-JH-01", *connection(identity), "--wait", "20", *words[1:]]
        return subprocess.run(send, capture_output=True, text=True, timeout=60)

    applied = cmd("vendor.key", "set_price", "A1", "30")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["ok"] is True
    named = cmd("vendor.key", "set_lockout", "none")  # lockouts are the school's: the tool knows the key by its .pub
    assert named.returncode == 2 and "the vendor's key (vendor.pub beside it is its public half)" in named.stderr
    alone = tmp_path / "elsewhere" / "vendor.key"  # nothing beside it to tell by: the machine refuses it
    alone.parent.mkdir()
    alone.write_bytes((keys.directory / "vendor.key").read_bytes())
    refused = cmd("vendor.key", "set_lockout", "none", key=alone)
    assert refused.returncode == 1 and "who has no say here" in refused.stdout
    by_school = cmd("school.key", "set_lockout", "none")
    assert by_school.returncode == 0, by_school.stderr + by_school.stdout
    assert world.vendor.store.count("cmd-result") == 3
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    assert world.vendor.incidents == 0


def test_serve_is_quiet_by_default_and_answers_help_status_and_stock_in_local_time(tmp_path, closing):
    closing(PN532Device(tmp_path / "reader0").start())
    serve, events = start_serve(tmp_path, closing)

    def answers() -> list[str]:
        return [e["text"] for e in events if e["event"] == "answer"]

    def reader_online() -> bool:  # the reader opens on its own thread: ask until it says so
        before = len(answers())
        keypad(serve, "status")
        eventually(lambda: len(answers()) > before, what="a status answer")  # one answer per question
        return "reader online" in answers()[-1]

    eventually(reader_online, what="the reader online")
    status = answers()[-1]
    assert status.startswith("TPE-DAAN-JH-01 idle, reader online, outbox no broker, ") and "+08:00" in status
    asked = len(answers())
    for line in ("help", "stock", "dance"):
        keypad(serve, line)
    texts = eventually(lambda: answers()[asked:] if len(answers()) >= asked + 14 else None, what="answers")
    assert texts[0].startswith("input: select SLOT | cancel")
    assert "A1 milk-lowfat-290 8/10 NT$25" in texts
    assert texts[-1].startswith("unknown input 'dance'; select SLOT")
    assert all(e["t"].endswith("+08:00") for e in events), "every time in the machine's local time"
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    assert serve.stderr is not None
    assert serve.stderr.read() == "", "nothing on stderr when all is well (no INFO from transitions or drivers)"


def test_a_missing_reader_port_puts_the_machine_out_of_order_within_two_seconds(tmp_path, closing):
    serve, events = start_serve(tmp_path, closing)  # no device on tmp_path/reader0
    started = time.monotonic()
    eventually(lambda: any(e["event"] == "display" and e.get("key") == "out_of_order" for e in events), 2.0,
               "the display saying the machine is out of order")  # fmt: skip
    assert time.monotonic() - started <= 2.0
    keypad(serve, "select A1")
    keypad(serve, "status")
    status = eventually(lambda: [e for e in events if e["event"] == "answer"], what="status")
    assert "out_of_order (card reader offline), reader offline" in status[0]["text"]
    assert not any(e["event"] == "selected" for e in events), "no sales while the reader is offline"
    keypad(serve, "door open")
    keypad(serve, "door close")  # a door cycle does not make a missing reader present
    keypad(serve, "status")
    eventually(lambda: len([e for e in events if e["event"] == "answer"]) >= 2, what="a second status")
    assert "out_of_order (card reader offline)" in [e for e in events if e["event"] == "answer"][1]["text"]
    plugged = len(events)
    closing(PN532Device(tmp_path / "reader0").start())  # the reader is plugged back in
    eventually(lambda: any(e["event"] == "display" and e.get("key") == "welcome" for e in events[plugged:]), 10.0,
               "the machine back in service once the reader answers")  # fmt: skip
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    assert serve.stderr is not None
    offline = next(line for line in serve.stderr.read().splitlines() if "offline: cannot open" in line)
    logged = datetime.fromisoformat(offline.split(" ", 1)[0])  # stamped in the host's zone (UTC) before
    shown = datetime.fromisoformat(events[0]["t"])
    assert logged.utcoffset() == shown.utcoffset() == timedelta(hours=8), (offline, events[0])
    assert abs(logged - shown) < timedelta(seconds=30), "the log's time and the events' are one clock"


def test_cards_into_a_state_dir_that_has_a_wallet_are_refused(tmp_path, closing):
    state = tmp_path / "state"
    assert subprocess.run([VENDING, "keys", "init", "--state-dir", str(state), "--valid-until", "2099-01-31"],
                          capture_output=True).returncode == 0  # fmt: skip
    closing(PN532Device(tmp_path / "reader0").start())
    serve, _ = start_serve(tmp_path, closing, "--state-dir", str(state))
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    again = subprocess.run(
        [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:",
         "--state-dir", str(state), "--cards", str(tmp_path / "cards.yaml")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2
    assert "--cards: " in again.stderr and "already holds this machine's wallet" in again.stderr


def test_without_a_state_dir_the_machine_keeps_its_books_in_the_user_s_state_dir(tmp_path, closing):
    closing(PN532Device(tmp_path / "reader0").start())
    serve, events = start_serve(tmp_path, closing)
    state = tmp_path / "xdg-state" / "vending" / "TPE-DAAN-JH-01"
    created = [e for e in events if e["event"] == "state_dir"]
    assert created and created[0]["path"] == str(state) and created[0]["term_key"] == "development"
    keypad(serve, "quit")
    assert serve.wait(timeout=20) == 0
    assert (state / "machine.db").is_file(), "kept after quit"
    again = subprocess.run(
        [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:", "--json"],
        input="stock\nquit\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert '"event": "state_dir"' not in again.stdout, "the second run finds its books"
    assert "A1 milk-lowfat-290 8/10" in again.stdout


def test_a_reporting_machine_without_a_state_dir_looks_for_its_key_in_the_default_one(tmp_path):
    keys = tmp_path / "keys"
    assert subprocess.run([VENDING, "keys", "dev-set", "--dir", str(keys)], capture_output=True).returncode == 0
    run = subprocess.run(
        [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:",
         "--broker", "mqtt://127.0.0.1:9", "--trust", str(keys)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")},
    )  # fmt: skip
    assert run.returncode == 2
    assert str(tmp_path / "xdg-state" / "vending" / "TPE-DAAN-JH-01" / "machine.key") in run.stderr


def test_a_keypad_line_that_is_no_input_changes_nothing_and_says_what_to_type(tmp_path):
    """`quit now` quit and `cancel please` cancelled; a pasted page was a selection the vendor was told of."""
    pasted = "A" * 5000
    lines = [f"select {pasted}", "select A1", "cancel please", "quit now", "door ajar", "select A1 B2", "stock", "quit"]
    run = subprocess.run(
        [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:", "--json"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    answers = [event["text"] for event in events if event["event"] == "answer"]
    assert answers[:4] == [
        f"{'select ' + 'A' * 33!r}...: a slot is a letter and one or two digits, e.g. A1; usage: select SLOT",
        f"'cancel please': cancel takes nothing after it; {INPUT_HELP}",
        f"'quit now': quit takes nothing after it; {INPUT_HELP}",
        "'door ajar': door takes open or close; usage: door open|close",
    ], answers
    assert answers[4].startswith("'select A1 B2': a slot is"), answers
    assert any(text.startswith("A1 milk-lowfat-290") for text in answers[5:]), "stock answered after 'quit now'"
    assert not [event for event in events if event["event"] in ("denied", "cancelled")], "a refused line acted"
    assert [event["slot"] for event in events if event["event"] == "selected"] == ["A1"]
    assert pasted not in run.stdout + run.stderr
    books = sqlite3.connect(tmp_path / "xdg-state" / "vending" / "TPE-DAAN-JH-01" / "machine.db")
    kinds = {kind for (kind,) in books.execute("SELECT kind FROM journal")}
    books.close()
    assert "powered_on" in kinds and not kinds & {"denied", "cancelled"}, kinds


def serve_without_stdin(tmp_path: Path, *extra: str) -> subprocess.Popen:
    """`vending serve` of the demo machine on the virtual reader, stdin /dev/null as a service manager gives it."""
    return subprocess.Popen(
        [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader", "virtual:", "--json",
         "--state-dir", str(tmp_path / "state"), *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")},
    )  # fmt: skip


def test_with_no_keypad_the_machine_runs_until_sigterm_and_then_closes_its_books(tmp_path, closing):
    """Under systemd (stdin /dev/null) the machine stopped as soon as it started; SIGTERM killed it unclosed."""
    assert subprocess.run([VENDING, "keys", "init", "--state-dir", str(tmp_path / "state"), "--valid-until",
                           "2099-01-31"], capture_output=True).returncode == 0  # fmt: skip
    serve = serve_without_stdin(tmp_path, "--keypad", "none")
    closing(ServeProcess(serve))
    assert serve.stdout is not None
    assert json.loads(serve.stdout.readline())["event"] == "power_on"
    assert (tmp_path / "state" / "machine.db-wal").exists(), "the books are open"
    serve.send_signal(signal.SIGTERM)
    out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    assert "stdin ended" not in err, "a machine with no keypad read stdin and stopped at its end"
    assert not (tmp_path / "state" / "machine.db-wal").exists(), "closed: the last connection folds its WAL in"


def test_a_machine_whose_stdin_ends_unread_says_how_to_run_without_a_keypad(tmp_path):
    state = tmp_path / "state"
    assert subprocess.run([VENDING, "keys", "init", "--state-dir", str(state), "--valid-until", "2099-01-31"],
                          capture_output=True).returncode == 0  # fmt: skip
    serve = serve_without_stdin(tmp_path)
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert "stdin ended before its first line" in err and "--keypad none" in err


def test_an_unknown_keypad_is_refused_before_the_state_dir_is_touched(tmp_path):
    serve = serve_without_stdin(tmp_path, "--keypad", "usb")
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 2
    assert "--keypad: unknown 'usb'; known: stdin, none" in err
    assert not (tmp_path / "state").exists()
