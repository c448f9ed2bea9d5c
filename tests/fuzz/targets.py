"""Fuzz targets shared by the hypothesis tests and the atheris harness (`make fuzz`).

Each takes raw bytes; the only exception allowed out of a parser is the project's ``InputError``
(for commands: none at all -- every command is answered).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from firmware.errors import InputError
from tests.conftest import CONFIGS

_TMP = Path(tempfile.mkdtemp(prefix="fuzz-"))
_MACHINE_DIR = _TMP / "machines"
_MACHINE_DIR.mkdir()
(_TMP / "products").mkdir()
(_TMP / "products" / "campus.yaml").write_bytes((CONFIGS / "products/campus.yaml").read_bytes())


def _load(loader, data: bytes, name: str) -> None:
    path = _MACHINE_DIR / name
    path.write_bytes(data)
    try:
        loader(path)
    except InputError:
        pass


def fuzz_machine(data: bytes) -> None:
    from firmware.config.machine import load_machine

    _load(load_machine, data, "machine.yaml")


def fuzz_catalog(data: bytes) -> None:
    from firmware.config.catalog import load_catalog

    _load(load_catalog, data, "catalog.yaml")


def fuzz_scenario(data: bytes) -> None:
    from simulator.scenarios.schema import load_scenario

    _load(load_scenario, data, "scenario.yaml")


_PROCESSOR = None


def _processor():
    global _PROCESSOR
    if _PROCESSOR is None:
        from firmware.app.command_gate import RateLimit
        from simulator.scenarios import load_scenario
        from simulator.scenarios.reporting_world import ReportingWorld
        from simulator.scenarios.runner import ScenarioRunner

        world = ReportingWorld(_TMP / "world")  # the run's keys; no broker: the commands are handed in directly
        scenario = load_scenario(CONFIGS / "scenarios/normal-morning.yaml")
        link = world.machine_link(scenario.machine.config.id)
        runner = ScenarioRunner(scenario, _TMP / "machine-state", link=link)
        runner.start()
        keys = world.keys
        _PROCESSOR = runner.machine.commands
        assert _PROCESSOR is not None
        _PROCESSOR.gate.rate = _PROCESSOR._unverified = RateLimit(10**9, burst=10**9)  # fuzz the checks, not the cap
        _PROCESSOR.vendor = keys.vendor
    return _PROCESSOR


def fuzz_command(name: str, payload: bytes) -> None:
    """Raw bytes (the unverified path) and the same bytes signed by the vendor (the validation behind it)."""
    from firmware.reporting.signed import sign_text

    processor = _processor()
    result = processor.handle(name, payload)
    assert isinstance(result, dict) and result["ok"] is False, result
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return
    signed = processor.handle(name, sign_text(processor.vendor, text).encode())
    assert isinstance(signed, dict) and isinstance(signed.get("ok"), bool), signed


def fuzz_wire(data: bytes) -> None:
    """Every inbound MQTT payload goes through here first: a dict or a WireError, nothing else."""
    from firmware.reporting.wire import WireError, parse_object

    try:
        assert isinstance(parse_object(data, 64 * 1024), dict)
    except WireError:
        pass


def fuzz_framers(data: bytes) -> None:
    from firmware.readers import line_frames, pn532_frames, rdm6300_frames

    for decode in (pn532_frames.decode, rdm6300_frames.decode, line_frames.decode):
        buffer = data
        while buffer:
            consumed, _ = decode(buffer)
            assert 0 <= consumed <= len(buffer)
            if consumed == 0:
                break
            buffer = buffer[consumed:]
