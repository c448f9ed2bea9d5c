"""The vending controller: an MDB/ICP-style cashless session as a ``transitions`` state machine."""

from firmware.controller.machine import TRANSITIONS, State, build_machine
from firmware.controller.records import Hardware, Transaction
from firmware.controller.session import Controller

__all__ = ["TRANSITIONS", "Controller", "Hardware", "State", "Transaction", "build_machine"]
