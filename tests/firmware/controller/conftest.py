from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from firmware.domain import CardTap
from simulator.scenarios import load_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT

MORNING = ROOT / "configs/scenarios/normal-morning.yaml"


class Rig:
    """A real controller on virtual hardware and a fresh state dir, with short-hands for the world."""

    def __init__(self, runner: ScenarioRunner) -> None:
        self.runner = runner

    @property
    def controller(self):
        return self.runner.machine.controller

    @property
    def state(self) -> str:
        return self.controller.state.value

    def uid(self, card: str) -> str:
        return self.runner.scenario.cards[card].uid

    def tap(self, card: str = "amy", uid: str | None = None) -> None:
        self.controller.present(CardTap(uid or self.uid(card), "virtual", self.runner.clock.now()))

    def select(self, slot: str) -> None:
        self.controller.dispatch("select", slot)

    def wait(self, seconds: int) -> None:
        self.runner._advance_to(self.runner.clock.now() + timedelta(seconds=seconds))

    def balance(self, card: str = "amy") -> int:
        return self.runner.machine.books.wallet.balance(self.uid(card)).amount

    def stock(self, slot: str) -> int:
        state = self.runner.machine.books.inventory.get(slot)
        assert state is not None, f"no slot {slot}"
        return state.stock

    @property
    def last(self):
        return self.controller.last_transaction

    def total(self) -> int:
        return self.runner.machine.invariant_total()


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    runner = ScenarioRunner(load_scenario(MORNING), tmp_path / "machine")
    runner.start()
    yield Rig(runner)
    runner.close()
