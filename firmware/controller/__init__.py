"""The vending controller: an MDB/ICP-style cashless session as a ``transitions`` state machine."""

from firmware.controller.machine import TRANSITIONS, State, build_machine
from firmware.controller.session import Controller, Transaction

__all__ = ["TRANSITIONS", "Controller", "State", "Transaction", "build_machine"]
