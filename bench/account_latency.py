"""An account-mode decision through Mosquitto with the issuer backend in its own process; then offline.

Issue 31's account-mode targets: tap -> decision p99 <= 50 ms online; offline (the issuer gone)
<= the configured timeout + 5 ms. The broker is Mosquitto as `vending broker setup` writes it (TLS,
a certificate per party, the ACL); the issuer is `vending backend issuer` in a process of its own,
with the accounts opened by its own `open`/`topup` orders; the machine is the node with
`payment: {mode: account}`. Each sale is selection first: the clock starts when the card is
presented and stops at the decision (the ``debited`` event, the debit committed), through the
inquiry and the authorisation, both signed, sealed and answered signed and sealed. Offline, the
issuer process is stopped (SIGSTOP: it neither answers nor closes its connection) and the decision
is the inquiry's timeout and the offline approval.
Run: .venv/bin/python bench/account_latency.py [--sales N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import merge_results, summary_ms  # noqa: E402
from firmware.app.node import Link, Node  # noqa: E402
from firmware.config.machine import load_machine  # noqa: E402
from firmware.controller.records import Hardware  # noqa: E402
from firmware.domain import CardTap  # noqa: E402
from simulator.dev_keys import DevKeys  # noqa: E402
from simulator.hardware.virtual import RecordingDisplay, VirtualClock, VirtualDispenser  # noqa: E402
from simulator.paths import MACHINES  # noqa: E402
from simulator.servers.mosquitto import mosquitto_binary, secured_mosquitto  # noqa: E402
from simulator.term_keys import simulation_term_key  # noqa: E402

ONLINE_TARGET_MS = 50.0
OFFLINE_MARGIN_MS = 5.0
TIMEOUT_MS = 200
START = datetime.fromisoformat("2026-03-02T08:00:00+08:00")
SLOT = "A1"
CARDS = [f"04{n:06X}" for n in range(1, 9)]


def vending(*argv: str) -> list[str]:
    return [str(Path(sys.executable).with_name("vending")), *argv]  # the console script of this environment


def issuer_process(work: Path, keys: DevKeys, address: Any) -> subprocess.Popen[str]:
    """`vending backend issuer` on its own, its accounts opened and topped up by its own orders first."""
    db, key = str(work / "issuer.db"), str(keys.directory / "issuer.key")
    for uid in CARDS:
        opened = ["--card", uid, "--profile", "staff", "--born", "1980-01-01", "--key", key, "--db", db]
        subprocess.run(vending("backend", "issuer", "open", *opened), check=True, capture_output=True)
        topped = ["--card", uid, "--amount", "10000", "--key", key, "--db", db]
        subprocess.run(vending("backend", "issuer", "topup", *topped), check=True, capture_output=True)
    broker = f"mqtts://{address.host}:{address.port}"
    tls = ["--ca", address.ca_file, "--cert", address.cert_file, "--cert-key", address.key_file]
    command = vending("backend", "issuer", "--broker", broker, "--key", key, "--machines",
                      str(keys.directory / "machines"), "--db", db, *tls)  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "issuer backend on" not in line:
        process.kill()
        raise RuntimeError(f"the issuer backend did not start: {line}")
    return process


def account_machine(state: Path, keys: DevKeys, access: Any, events: Any) -> Node:
    setup = load_machine(MACHINES / "demo.yaml")
    update = {"mode": "account", "timeout_ms": TIMEOUT_MS, "offline_limit": 10**6}
    payment = setup.config.payment.model_copy(update=update)
    setup = replace(setup, config=setup.config.model_copy(update={"payment": payment}))
    simulation_term_key(state, START.date())
    dispenser = VirtualDispenser({code: 10**6 for code in setup.config.slots})
    hardware = Hardware(VirtualClock(START), RecordingDisplay(), dispenser)
    machine_id = setup.config.id
    link = Link(access.machine(machine_id), keys.trust, keys.machine(machine_id))
    return Node(setup, state, hardware, link=link, events=events)


def sales(node: Node, decided: list[float], count: int) -> list[float]:
    samples = []
    for i in range(count):
        node.controller.restock({SLOT: 8})
        node.controller.dispatch("select", SLOT)
        decided.clear()
        started = time.perf_counter()
        node.controller.present(CardTap(CARDS[i % len(CARDS)], "virtual", node.controller.now()))
        if len(decided) != 1:
            raise RuntimeError(f"sale {i}: no debit ({node.controller.last_transaction})")
        samples.append(decided[0] - started)
    return samples


def measure(count: int) -> tuple[list[float], list[float]]:
    """(online, offline) tap -> decision per sale, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker, access = secured_mosquitto(work)
        keys = DevKeys(work / "keys")
        decided: list[float] = []

        def on_event(at: datetime, name: str, details: dict[str, Any]) -> None:
            if name == "debited":
                decided.append(time.perf_counter())

        node = account_machine(work / "machine", keys, access, on_event)
        issuer = issuer_process(work, keys, access.party("issuer"))
        try:
            node.start()
            assert node.publisher is not None and node.publisher.wait_connected(15)
            sales(node, decided, 20)  # warm-up: connections, schemas, caches
            online = sales(node, decided, count)
            os.kill(issuer.pid, signal.SIGSTOP)  # gone silent, its connection still open
            offline = sales(node, decided, max(count // 4, 20))
            os.kill(issuer.pid, signal.SIGCONT)
        finally:
            issuer.terminate()
            try:
                issuer.wait(10)
            except subprocess.TimeoutExpired:
                issuer.kill()
            node.close(flush_s=5)
            broker.close()
    return online, offline


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sales", type=int, default=400)
    args = parser.parse_args()
    if mosquitto_binary() is None:
        raise SystemExit("needs Debian's mosquitto (make test installs it when root)")
    online, offline = measure(args.sales)
    on, off = summary_ms(online), summary_ms(offline)
    offline_bound = TIMEOUT_MS + OFFLINE_MARGIN_MS
    merge_results(
        "account_latency",
        {
            "timeout_ms": TIMEOUT_MS,
            "online": on,
            "offline": off,
            "online_target_ms": ONLINE_TARGET_MS,
            "offline_target_ms": offline_bound,
            "met": on["p99_ms"] <= ONLINE_TARGET_MS and off["p99_ms"] <= offline_bound,
        },
    )
    print(f"account-mode sale online, tap -> decision: p50 {on['p50_ms']:.1f} ms  p99 {on['p99_ms']:.1f} ms "
          f"(target <= {ONLINE_TARGET_MS:.0f})")  # fmt: skip
    print(f"offline (issuer silent, timeout {TIMEOUT_MS} ms): p50 {off['p50_ms']:.1f} ms  p99 {off['p99_ms']:.1f} ms "
          f"(target <= {offline_bound:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
