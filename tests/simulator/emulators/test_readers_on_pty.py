"""Each driver against its device emulator over a real pseudo-terminal: the bytes a real reader sends."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.readers.registry import open_reader
from simulator.emulators.devices import LineDevice, PN532Device, RDM6300Device
from simulator.hardware.virtual import VirtualClock
from tests.simulator.emulators.conftest import outcome, serve_loop
from tests.support.waiting import eventually

CLOCK = VirtualClock(datetime(2026, 3, 2, 8, tzinfo=UTC))


class FakeMonotonic:
    """The driver's clock: real time (bytes on the pty still take theirs) plus a quarter second per poll.

    Every wait in the driver (a frame's deadline, the pause between searches, the debounce) reads
    this clock, so a frame still times out in real time while each poll costs 0.25 s of reader time.
    """

    def __init__(self, step: float = 0.25) -> None:
        self.offset, self.step = 1000.0, step

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    @property
    def t(self) -> float:
        return self()

    def poll(self, reader, timeout: float = 0.1):
        """One ``read_tap``, then a quarter second of the reader's time passes."""
        tap = reader.read_tap(timeout)
        self.offset += self.step
        return tap


@pytest.fixture
def device(request, tmp_path):
    made = request.param(tmp_path / "reader0").start()
    yield made
    made.stop()


def first_tap(reader, timeout: float = 10):
    return eventually(lambda: reader.read_tap(0.1), timeout, "a card tap")


CASES = [
    (PN532Device, "pn532", "04A1B2C3D4E5F6"),
    (PN532Device, "pn532", "DEADBEEF"),
    (PN532Device, "pn532", "0102030405060708090A"),
    (RDM6300Device, "rdm6300", "67003B51C6"),
    (LineDevice, "line", "04A1B2C3D4E5F6"),
]


@pytest.mark.parametrize("device,driver,uid", CASES, indirect=["device"], ids=[f"{d}-{u}" for _, d, u in CASES])
def test_taps_arrive_with_the_right_uid(device, driver, uid, tmp_path, closing):
    reader = closing(open_reader(f"{driver}:{tmp_path / 'reader0'}", CLOCK))
    reader.read_tap(0.05)  # open the port first: pyserial flushes what arrived before it opened
    device.tap(uid)
    tap = first_tap(reader)
    assert (tap.uid, tap.reader) == (uid, driver)
    if driver == "pn532":
        assert reader.firmware == "PN532 v1 .6 support 0x07".replace(" .", ".")
        assert {0x14, 0x02, 0x4A, 0x52} <= set(device.commands)


@pytest.mark.parametrize("device", [PN532Device], indirect=True)
def test_a_card_held_for_ten_seconds_is_one_tap_and_a_new_presentation_another(device, tmp_path, closing):
    clock = FakeMonotonic()
    reader = closing(open_reader(f"pn532:{tmp_path / 'reader0'}?debounce=1", CLOCK, monotonic=clock))
    device.place("04A1B2C3D4E5F6")
    start = clock.t
    taps = []
    while clock.t - start < 10:  # ten seconds of the reader's time, polling all along
        tap = clock.poll(reader)
        if tap:
            taps.append(tap)
    assert len(taps) == 1 and device.reads >= 15  # read on every other poll: 0.1 s between reads of a held card
    device.remove()
    for _ in range(8):  # two seconds without a card: longer than the debounce
        assert clock.poll(reader) is None
    device.place("04A1B2C3D4E5F6")
    assert first_tap(reader).uid == "04A1B2C3D4E5F6"


@pytest.mark.parametrize("device", [PN532Device], indirect=True)
@pytest.mark.parametrize("fault", ["noise", "split", "corrupt"])
def test_pn532_driver_survives_noise_split_frames_and_bad_checksums(device, fault, tmp_path, closing):
    reader = closing(open_reader(f"pn532:{tmp_path / 'reader0'}", CLOCK))
    assert reader.read_tap(0.1) is None and reader.online
    device.fault(fault)
    device.tap("04A1B2C3D4E5F6")
    assert first_tap(reader).uid == "04A1B2C3D4E5F6"


@pytest.mark.parametrize("device", [RDM6300Device], indirect=True)
def test_rdm6300_corrupt_frame_is_dropped_and_the_repeat_is_read(device, tmp_path, closing):
    reader = closing(open_reader(f"rdm6300:{tmp_path / 'reader0'}", CLOCK))
    device.fault("corrupt")
    device.place("67003B51C6")
    assert first_tap(reader).uid == "67003B51C6"


@pytest.mark.parametrize("device", [PN532Device], indirect=True)
def test_silent_then_unplugged_reader_goes_offline_and_recovers_after_replug(device, tmp_path, closing):
    statuses: list[bool] = []
    reader = closing(
        open_reader(f"pn532:{tmp_path / 'reader0'}", CLOCK, on_status=lambda online, _: statuses.append(online))
    )
    reader.read_tap(0.1)
    device.fault("silent")
    eventually(lambda: reader.read_tap(0.1) is None and statuses[-1] is False, what="offline when silent")
    device.fault("clear")
    eventually(lambda: reader.read_tap(0.1) is None and statuses[-1] is True, what="back online")
    device.command("unplug")
    eventually(lambda: reader.read_tap(0.1) is None and statuses[-1] is False, what="offline when unplugged")
    device.command("replug")  # a new pty behind the same link
    device.tap("04A1B2C3D4E5F6")
    assert first_tap(reader, 20).uid == "04A1B2C3D4E5F6"
    assert statuses[-1] is True and statuses.count(False) == 2


@pytest.mark.parametrize("device", [PN532Device], indirect=True)
def test_a_card_tapped_after_a_replug_is_read_like_the_first(device, tmp_path, closing):
    """The chip comes back from an unplug as after reset; the tap count it had must not lift the next card."""
    reader = closing(open_reader(f"pn532:{tmp_path / 'reader0'}?debounce=0", CLOCK))
    reader.read_tap(0.05)
    device.tap("04A1B2C3")
    assert first_tap(reader).uid == "04A1B2C3"
    device.command("unplug")
    device.command("replug")
    device.tap("04A1B2C3")
    assert first_tap(reader, 20).uid == "04A1B2C3" and device.reads == 2


def test_unplug_mid_session_puts_the_machine_out_of_order_and_replug_recovers(tmp_path: Path, closing):
    from simulator.scenarios import load_scenario
    from simulator.scenarios.runner import ScenarioRunner
    from tests.conftest import ROOT

    device = closing(PN532Device(tmp_path / "reader0").start())
    runner = closing(
        ScenarioRunner(load_scenario(ROOT / "configs/scenarios/normal-morning.yaml"), tmp_path / "machine")
    )
    runner.start()
    controller = runner.machine.controller
    amy = runner.scenario.cards["amy"].uid
    with serve_loop(runner, f"pn532:{tmp_path / 'reader0'}") as loop:
        device.tap(amy)
        eventually(lambda: controller.state.value == "awaiting_selection", what="card session")
        device.command("unplug")
        eventually(lambda: controller.state.value == "out_of_order", what="out of order")
        last = controller.last_transaction
        assert last is not None and (last.outcome, last.reason) == ("cancelled", "fault")
        loop.line("select A1")
        eventually(lambda: outcome(controller)[1] == "out_of_service", what="sales stopped")
        device.command("replug")
        eventually(lambda: controller.state.value == "idle", timeout=45, what="recovered")
        loop.line("select A1")
        device.tap(amy)
        eventually(lambda: outcome(controller)[0] == "vended", what="a sale after replug")
        assert runner.machine.books.wallet.balance(amy).amount == 75
