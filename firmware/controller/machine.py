"""The controller's states and transitions, declared as data (the diagram is exported from this).

Modelled on the MDB/ICP cashless session: Enabled (idle) -> Session Idle (card or selection first)
-> Vend (authorising, vending) -> Vend Success / Vend Failure (refund) -> Session Complete.
Guards are named predicates on the model; the work is done in small callbacks in ``session.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from transitions import Machine

from firmware.controller.dispatch import CompiledMachine, Table


class State(Enum):
    IDLE = "idle"
    AWAITING_CARD = "awaiting_card"  # selection made, waiting for a tap ("always idle" mode)
    AWAITING_SELECTION = "awaiting_selection"  # card tapped: MDB "session idle"
    AUTHORISING = "authorising"  # MDB vend request -> approved / denied
    VENDING = "vending"  # debited, motor running, watching the drop sensor
    VEND_SUCCESS = "vend_success"
    REFUNDING = "refunding"  # MDB vend failure: no drop -> refund
    SESSION_COMPLETE = "session_complete"
    SERVICE = "service"  # door open: no sales
    OUT_OF_ORDER = "out_of_order"  # fault: no sales


S = State
STATES: list[dict[str, Any]] = [
    {"name": S.IDLE, "on_enter": "clear_session"},
    {"name": S.AWAITING_CARD, "on_enter": "prompt_for_card"},
    {"name": S.AWAITING_SELECTION, "on_enter": "prompt_for_selection"},
    {"name": S.AUTHORISING, "on_enter": "authorise"},
    {"name": S.VENDING, "on_enter": "run_motor"},
    {"name": S.VEND_SUCCESS, "on_enter": "finish_vend"},
    {"name": S.REFUNDING, "on_enter": "refund_card"},
    {"name": S.SESSION_COMPLETE, "on_enter": "close_session"},
    {"name": S.SERVICE},
    {"name": S.OUT_OF_ORDER},
]
SESSION = [S.AWAITING_CARD, S.AWAITING_SELECTION]
SELLING = [S.IDLE, *SESSION]
BUSY = [S.AUTHORISING, S.VENDING, S.VEND_SUCCESS, S.REFUNDING, S.SESSION_COMPLETE]
CLOSED = [S.SERVICE, S.OUT_OF_ORDER]

TRANSITIONS: list[dict[str, Any]] = [
    # selection first, or card first, in either order
    {
        "trigger": "select",
        "source": [S.IDLE, S.AWAITING_CARD],
        "dest": S.AWAITING_CARD,
        "conditions": "slot_sellable",
        "before": "remember_selection",
    },
    {
        "trigger": "select",
        "source": S.AWAITING_SELECTION,
        "dest": S.AUTHORISING,
        "conditions": "slot_sellable",
        "before": "remember_selection",
    },
    {"trigger": "select", "source": SELLING, "dest": None, "after": "deny_selection"},
    {"trigger": "select", "source": CLOSED, "dest": None, "after": "deny_out_of_service"},
    {
        "trigger": "tap",
        "source": [S.IDLE, S.AWAITING_SELECTION],
        "dest": S.AWAITING_SELECTION,
        "conditions": "card_known",
        "before": "remember_card",
    },
    {
        "trigger": "tap",
        "source": S.AWAITING_CARD,
        "dest": S.AUTHORISING,
        "conditions": "card_known",
        "before": "remember_card",
    },
    {"trigger": "tap", "source": SELLING, "dest": S.IDLE, "after": "deny_unknown_card"},
    {"trigger": "tap", "source": CLOSED, "dest": None, "after": "deny_out_of_service"},
    # a purse card lifted before it was read: nothing happened; the session and its selection wait for it
    {"trigger": "card_unread", "source": SELLING, "dest": None, "after": "ask_to_hold_card"},
    {"trigger": "card_unread", "source": CLOSED, "dest": None, "after": "deny_out_of_service"},
    # authorisation, vend, settlement
    # the debit is prepared first; a debit the card did not confirm (pulled mid-write) vends nothing
    {
        "trigger": "approve",
        "source": S.AUTHORISING,
        "dest": S.VENDING,
        "prepare": "debit_card",
        "conditions": "debit_confirmed",
    },
    {"trigger": "approve", "source": S.AUTHORISING, "dest": S.IDLE, "before": "deny_unconfirmed"},
    {"trigger": "deny", "source": S.AUTHORISING, "dest": S.AWAITING_SELECTION, "after": "record_denial"},
    {"trigger": "drop_detected", "source": S.VENDING, "dest": S.VEND_SUCCESS, "before": "confirm_drop"},
    {"trigger": "no_drop", "source": S.VENDING, "dest": S.REFUNDING},
    {"trigger": "settled", "source": [S.VEND_SUCCESS, S.REFUNDING], "dest": S.SESSION_COMPLETE},
    {"trigger": "end_session", "source": S.SESSION_COMPLETE, "dest": S.IDLE},
    # leaving a session early
    {"trigger": "cancel", "source": SESSION, "dest": S.IDLE, "before": "record_user_cancel"},
    {"trigger": "cancel", "source": [S.IDLE, *CLOSED], "dest": None},
    {"trigger": "cancel", "source": BUSY, "dest": None, "after": "show_vend_in_progress"},
    {"trigger": "timeout", "source": SESSION, "dest": S.IDLE, "before": "record_timeout"},
    # service door, route technicians' cards and faults
    {"trigger": "door_open", "source": [*SELLING, S.OUT_OF_ORDER], "dest": S.SERVICE, "before": "close_for_door"},
    # in service by a technician's card the door is still the door: opened, it is journaled and shown
    {"trigger": "door_open", "source": S.SERVICE, "dest": None, "after": "close_for_door"},
    {
        "trigger": "technician",
        "source": [*SELLING, S.OUT_OF_ORDER],
        "dest": S.SERVICE,
        "before": "start_technician_visit",
    },
    {"trigger": "technician", "source": BUSY, "dest": None},  # a vend finishes first; tap again after it
    # a second tap with the door still open: sales wait for the door, which ends the visit when it closes
    {
        "trigger": "technician",
        "source": S.SERVICE,
        "dest": None,
        "conditions": "door_held_open",
        "after": "ask_to_close",
    },
    {
        "trigger": "technician",
        "source": S.SERVICE,
        "dest": S.OUT_OF_ORDER,
        "conditions": "fault_persists",
        "before": "finish_technician_visit",
        "after": "show_fault",
    },
    {
        "trigger": "technician",
        "source": S.SERVICE,
        "dest": S.IDLE,
        "before": "finish_technician_visit",
        "after": "show_welcome",
    },
    # closing the door never clears a fault that needs ``recover`` (storage, motor, reader): back out of order
    {
        "trigger": "door_close",
        "source": S.SERVICE,
        "dest": S.OUT_OF_ORDER,
        "prepare": "note_door_closed",
        "conditions": "fault_persists",
        "before": "finish_technician_visit",
        "after": "show_fault",
    },
    {
        "trigger": "door_close",
        "source": S.SERVICE,
        "dest": S.IDLE,
        "prepare": "note_door_closed",
        "before": "finish_technician_visit",
        "after": "show_welcome",
    },
    # a door is a door: closing it where no visit is open changes nothing but what the machine knows of it
    {"trigger": "door_close", "source": [*SELLING, S.OUT_OF_ORDER], "dest": None, "prepare": "note_door_closed"},
    {"trigger": "fault", "source": SELLING, "dest": S.OUT_OF_ORDER, "before": "close_for_fault"},
    # with the door open, or already out of order, a fault is noted (and found again when the door closes)
    {"trigger": "fault", "source": CLOSED, "dest": None, "before": "close_for_fault"},
    {
        "trigger": "recover",
        "source": S.OUT_OF_ORDER,
        "dest": S.IDLE,
        "conditions": "storage_ok",
        "before": "clear_fault",
        "after": "show_welcome",
    },
]


class Triggers:
    """The trigger methods bound on the model (dispatch.py), declared so mypy and go-to-definition see them.

    Each returns True: the machine is queued, so a trigger fired from a callback runs once the current
    one has finished and cannot report its outcome (``transitions`` does the same); the state says what
    happened. A test keeps this list equal to the triggers above.
    """

    trigger: Callable[..., bool]
    select: Callable[..., bool]
    tap: Callable[..., bool]
    card_unread: Callable[..., bool]
    approve: Callable[..., bool]
    deny: Callable[..., bool]
    drop_detected: Callable[..., bool]
    no_drop: Callable[..., bool]
    settled: Callable[..., bool]
    end_session: Callable[..., bool]
    cancel: Callable[..., bool]
    timeout: Callable[..., bool]
    door_open: Callable[..., bool]
    door_close: Callable[..., bool]
    technician: Callable[..., bool]
    fault: Callable[..., bool]
    recover: Callable[..., bool]


TABLE = Table.of(STATES, TRANSITIONS)


def reference_machine(model: object, initial: State = State.IDLE) -> Machine:
    """The declaration as ``transitions`` reads it: the reference the compiled dispatcher is held to."""
    return Machine(
        model=model,
        states=STATES,
        transitions=TRANSITIONS,
        initial=initial,
        queued=True,
        auto_transitions=False,
        ignore_invalid_triggers=False,
        send_event=False,
    )


def build_machine(model: object, initial: State = State.IDLE) -> CompiledMachine:
    """Bind the declaration to ``model``, compiled (dispatch.py); queued, so callbacks can fire the next event."""
    return CompiledMachine(model, TABLE, initial)
