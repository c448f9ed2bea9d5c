"""Idle CPU of `vending reader emulate` and `vending serve` over 10 s with nothing happening.

Both run as the user runs them (separate processes, the emulator on a pty, serve reading it through
the PN532 driver); after serve reports the reader online, each process's user+system CPU time is
read from /proc before and after the idle window. Target: at most 1 % of a core each.
Run: .venv/bin/python bench/idle_cpu.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import merge_results, process_cpu_s  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENDING = str(Path(sys.executable).with_name("vending"))


def wait_for(stream: IO[str] | None, text: str, timeout: float = 30) -> None:
    if stream is None:
        raise ValueError("the process's output is not piped")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if text in line:
            return
    raise TimeoutError(f"never saw {text!r}")


def measure(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "reader0"
        emulator = subprocess.Popen(
            [VENDING, "reader", "emulate", "--protocol", "pn532", "--link", str(link)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        serve = None
        try:
            wait_for(emulator.stdout, "pn532 reader on")
            state = Path(tmp) / "state"
            valid_until = time.strftime("%Y-%m-%d", time.localtime(time.time() + 90 * 86400))
            subprocess.run(
                [VENDING, "keys", "init", "--state-dir", str(state), "--valid-until", valid_until],
                check=True, capture_output=True,
            )  # fmt: skip
            serve = subprocess.Popen(
                [VENDING, "serve", "--machine", str(ROOT / "configs/machines/demo.yaml"), "--reader",
                 f"pn532:{link}", "--state-dir", str(state), "--log-level", "info"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            wait_for(serve.stderr, "online")
            time.sleep(2)  # start-up work (imports, the day's first checks) is not idling
            before = {"emulator": process_cpu_s(emulator.pid), "serve": process_cpu_s(serve.pid)}
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            after = {"emulator": process_cpu_s(emulator.pid), "serve": process_cpu_s(serve.pid)}
        finally:
            for process in (serve, emulator):
                if process is not None:
                    process.kill()
                    process.wait()
    return {f"{name}_percent_of_core": round(100 * (after[name] - before[name]) / elapsed, 2) for name in before}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    figures = {**measure(args.seconds), "idle_seconds": args.seconds, "target_percent": 1.0}
    print(figures)
    merge_results("idle_cpu", figures)


if __name__ == "__main__":
    main()
