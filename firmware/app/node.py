"""The vending machine as one unit: opened from its config, state dir, hardware and an optional link.

Everything that runs a machine -- ``python -m firmware``, ``vending serve``, a scenario, a fleet day,
the soak, the crash harness, the benchmarks -- opens a ``Node`` and drives it: events go to
``node.controller``, and between events the owner calls ``node.tick()``, the one place that closes
finished days, fires timeouts, picks up a rotated term key and applies remote commands. Only this
module wires the books, the controller, the reporter, the publisher, the inbox and the command
processor together, so a change to the wiring is made once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from firmware.app.command_set import stored_lockouts
from firmware.app.commands import CommandProcessor
from firmware.app.pushes import Pushes
from firmware.app.state_lock import StateLock
from firmware.cards.purse import Sam
from firmware.clock import CLOCK_SKEW, BooksClock, local_day_end
from firmware.config.machine import MachineSetup, with_lockouts
from firmware.controller.records import EventSink, Hardware
from firmware.controller.session import Controller
from firmware.errors import VendingError
from firmware.files import KEY_FILE_BYTES, read_capped
from firmware.identity.keys import TermKeyring
from firmware.identity.keyset import MachineTrust, read_card_master
from firmware.identity.signing import Identity
from firmware.journal.alerts import GuardianAlertBook
from firmware.journal.books import MachineBooks
from firmware.journal.controls import ControlsBook
from firmware.journal.credits import CreditsBook
from firmware.journal.database import Database
from firmware.journal.hotlist import HotlistBook, HotlistCheck
from firmware.journal.technicians import TechnicianDesk
from firmware.payments.account import IssuerAccount
from firmware.payments.card import CardPurse
from firmware.policy.chain import build_policy
from firmware.ports import SalesPolicy
from firmware.reporting.inbox import Inbox
from firmware.reporting.issuer_link import MqttIssuerLink
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.publisher import OutboxPublisher
from firmware.reporting.reporter import reporter_for

log = logging.getLogger(__name__)
CLOCK_FAULT = "clock behind the books"  # the out-of-order reason while the wall clock is behind them
DB_FILE = "machine.db"


@dataclass(frozen=True)
class Link:
    """A reporting machine's way to its backends: the broker, whom it trusts, and its own signing key.

    Without an address the machine journals its signed, sealed reports to the outbox but cannot
    connect (a simulated day that drains later, a benchmark of the vend alone). ``heartbeat_s`` and
    ``resend_after_s`` are the publisher's timers (a deployed machine keeps the defaults).
    """

    address: BrokerAddress | None
    trust: MachineTrust
    identity: Identity
    heartbeat_s: float = 30.0
    resend_after_s: float = 5.0


class Node:
    """A controller with the books, term keyring and (with a link) the reporting it owns.

    Not thread-safe, like the controller: one thread drives it (the runtime's loop, a scenario, a fleet
    worker). The publisher's worker and paho's network thread touch only the outbox and the inbox.
    """

    def __init__(
        self,
        setup: MachineSetup,
        state_dir: Path,
        hardware: Hardware,
        *,
        link: Link | None = None,
        events: EventSink | None = None,
        policy: SalesPolicy | None = None,
    ) -> None:
        """Open (or create) the machine's state and wire the controller; ``start()`` next.

        The state dir must hold a term key valid today (``TermKeyError`` otherwise): a machine never
        invents its own. It is held for this machine until ``close`` or ``power_loss`` (state_lock.py).
        """
        self.state_dir = state_dir
        self.link = link
        self.keyring = TermKeyring(state_dir)
        self.keyring.check_valid(hardware.clock.now().astimezone(setup.config.zone).date())
        self._lock = StateLock.take(state_dir)
        try:
            self._wire(setup, hardware, link, events, policy)
        except BaseException:
            if hasattr(self, "db"):
                self.db.close()
            self._lock.release()
            raise

    def _wire(
        self, setup: MachineSetup, hardware: Hardware, link: Link | None, events: EventSink | None,
        policy: SalesPolicy | None,
    ) -> None:  # fmt: skip
        state_dir = self.state_dir
        self.db, self.books, self.fresh = _open_books(state_dir, setup, link)
        # every stamp, timer and day from here on is the books' time: never before what they hold
        self.clock = BooksClock(hardware.clock.now, self.books.journal.latest_at())
        hardware = replace(hardware, clock=self.clock)
        lockouts = stored_lockouts(self.books)
        if lockouts is not None:  # a remote set_lockout outlives a restart
            setup = with_lockouts(setup, lockouts)
        self.hotlist = _hotlist_check(setup, self.db, link)
        self.controls = _controls_book(setup, self.db, link)
        spend = self.books.vends.spent_between if self.controls is not None else None
        policy_for = partial(build_policy, hotlist=self.hotlist, controls=self.controls, period_spend=spend)
        self.controller = Controller(
            setup,
            hardware,
            self.books,
            policy or policy_for(setup),
            self.keyring,
            events,
            policy_factory=None if policy else policy_for,
            alerts=GuardianAlertBook(self.controls) if self.controls is not None else None,
            technicians=_technician_desk(setup, self.db, state_dir),
        )
        credits = self.books.payment.credits if isinstance(self.books.payment, CardPurse) else None
        self.pushes = None if link is None else Pushes(self.controller, self.db, link.trust.authorities,
                                                       self.hotlist, self.controls, credits)  # fmt: skip
        self.publisher: OutboxPublisher | None = None
        self.inbox: Inbox | None = None
        # commands are checked against the link's trust anchors (never the publisher's): no link, no commands
        self.commands = CommandProcessor(self.controller, self.books, link.trust.authorities) if link else None
        self._today = ""  # the local day the last day-close check ran on
        self._connects_seen = 0  # the publisher's connections the machine has been announced after

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, *, door_open: bool = False, connect: bool = True) -> Node:
        """Recover and start selling (unless the clock is behind the books); with a link, start reporting too."""
        self.controller.start(door_open=door_open)
        self.check_clock()
        if connect and self.link is not None and self.link.address is not None:
            self.connect()
        return self

    def connect(self) -> OutboxPublisher:
        """Start the publisher and the inbox (a simulated run may sell first and report later)."""
        link = self.link
        if link is None or link.address is None:
            raise VendingError(f"machine {self.machine_id} has no broker to report to")
        if self.publisher is None:
            self._connects_seen = 0
            self.inbox = Inbox(self.machine_id, link.trust.authorities)
            self.inbox.push_topics = self.pushes.topics() if self.pushes else {}
            self._link_accounts(link, self.inbox)
            self.publisher = OutboxPublisher(
                self.db.path,
                self.machine_id,
                link.address,
                self.controller.hw.clock,
                link.identity,
                self.inbox,
                reporting=self.controller.config.reporting,
                heartbeat_s=link.heartbeat_s,
                resend_after_s=link.resend_after_s,
            )
            self.publisher.checks_hotlist = self.hotlist is not None
            self.publisher.start()
        return self.publisher

    def _link_accounts(self, link: Link, inbox: Inbox) -> None:
        """With issuer-held accounts, the way to the issuer: requests out through the publisher, answers in."""
        payment = self.books.payment
        if not isinstance(payment, IssuerAccount):
            return

        def publish(topic: str, payload: str) -> bool:
            return self.publisher is not None and self.publisher.publish_now(topic, payload)

        issuer = MqttIssuerLink(self.machine_id, link.identity, link.trust.issuer_seal, link.trust.authorities, publish)
        inbox.on_auth_answer = issuer.receive
        payment.link = issuer

    def set_link(self, up: bool) -> None:
        """Cut or restore the machine's own network connection (the outbox keeps every report)."""
        if self.publisher is not None:
            self.publisher.set_link(up)

    def power_loss(self) -> None:
        """The power goes: no goodbye on the wire (the broker sends the Will), nothing in flight committed."""
        if self.publisher is not None:
            self.publisher.abandon()
            self.publisher = None
        self.db.abandon()
        self._lock.release()  # as a process's end lets it go

    def disconnect(self, flush_s: float = 0.0) -> bool:
        """Stop reporting cleanly: give the publisher ``flush_s`` to drain, then say offline.

        True when the outbox is empty (without a publisher: nothing was sent, the next boot sends it).
        """
        if self.publisher is None:
            return True
        drained = self.publisher.flush(flush_s) if flush_s > 0 else self.publisher.depth() == 0
        self.publisher.stop()
        self.publisher = None
        return drained

    def close(self, flush_s: float = 0.0) -> bool:
        """Stop cleanly: drain for at most ``flush_s`` and disconnect, then close the books."""
        drained = self.disconnect(flush_s)
        self.db.close()
        self._lock.release()
        return drained

    # ---- between events -------------------------------------------------------------------------
    def tick(self) -> None:
        """Every duty between events, in order: the clock, close finished days, fire timeouts, rotate keys, commands."""
        self.check_clock()
        now = self.controller.now()
        today = now.astimezone(self.controller.config.zone).date()
        self.close_finished_days(today.isoformat())
        self.controller.poll()
        self.keyring.refresh(today)
        publisher = self.publisher
        if publisher is not None:
            self._apply_pushes()
            self._announce_after_reconnect(publisher)
            if self.commands is not None and self.inbox is not None and self.commands.apply_from(self.inbox):
                publisher.wake()  # the answers are in the outbox

    def _apply_pushes(self) -> None:
        """The authorities' pushes that arrived (lost-card lists, guardian controls), each checked and applied."""
        if self.pushes is None or self.inbox is None:
            return
        while not self.inbox.pushes.empty():
            self.pushes.apply(*self.inbox.pushes.get_nowait())

    @property
    def hotlists_refused(self) -> int:
        return self.pushes.refused["hotlist"] if self.pushes else 0

    def _announce_after_reconnect(self, publisher: OutboxPublisher) -> None:
        """After the link came back (not its first connection), the stock snapshot again.

        A broker that restarted without its retained messages, or a backend that started meanwhile,
        learns the planogram; the first connection after boot has the boot's snapshot already.
        """
        connects = publisher.connects
        if connects > self._connects_seen:
            if self._connects_seen or connects > 1:  # also when the link bounced before the first tick saw it
                self.controller.journal_only("link_restored", quiet=True)
                publisher.wake()
            self._connects_seen = connects

    def check_clock(self) -> None:
        """Out of order while the wall clock is behind the books by more than ``CLOCK_SKEW``; back when it is not.

        Within the skew the books' time stands still until the wall clock catches up (``BooksClock``).
        """
        behind = self.clock.behind()
        before = self.controller.fault_detail
        self.controller.standing_fault(CLOCK_FAULT, behind > CLOCK_SKEW)
        after = self.controller.fault_detail
        if after == CLOCK_FAULT != before:
            log.warning("sales stopped: the clock is %s behind the books, which hold %s; set the time",
                        behind, self.clock.now().isoformat())  # fmt: skip
        elif before == CLOCK_FAULT != after:
            log.warning("the clock has caught up with the books: sales resume")

    def close_finished_days(self, today: str) -> None:
        """Close every trading day before ``today`` (the local day) that is still open.

        At local midnight, and at start-up for days a power cut left open; the day's settlement,
        summary and retention follow from the close, and a purse card's steps whose card has not been
        back for a week go to the issuer (``CardPurse.hand_over``).
        """
        if today == self._today:
            return
        self._today = today
        for day in self.books.open_days(today):
            log.info("closing trading day %s", day)
            self.controller.close_day(day)
        if isinstance(self.books.payment, CardPurse):
            self.books.payment.hand_over(self.clock.now())

    @property
    def next_deadline(self) -> datetime | None:
        """When the machine next has something to do on its own: a session timeout, a release, local midnight.

        Midnight too, so that a day closes at its end on virtual time as on the wall clock, not at the
        first event after a wait that jumped past it (``simulator.hardware.virtual.advance``).
        """
        now, zone = self.controller.now(), self.controller.config.zone
        midnight = local_day_end(now.astimezone(zone).date().isoformat(), zone)
        controller = self.controller.next_deadline
        return midnight if controller is None else min(controller, midnight)

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def machine_id(self) -> str:
        return self.controller.config.id

    def invariant_total(self) -> int:
        """Card balances + takings + money in flight; must equal the starting total at all times."""
        return self.books.invariant_total()


def _hotlist_check(setup: MachineSetup, db: Database, link: Link | None) -> HotlistCheck | None:
    """The lost-card check a machine config asks for (``hotlist:``), with the issuer's key from the link's trust."""
    wanted = setup.config.hotlist
    if wanted is None:
        return None
    key = link.trust.hotlist_key if link is not None else None
    if key is None:
        db.close()
        raise VendingError("hotlist: this machine checks the issuer's lost-card list but holds no hotlist key "
                           "(hotlist.key beside the trusted keys, as `vending keys dev-set` writes it)")  # fmt: skip
    return HotlistCheck(HotlistBook(db), key, wanted.when_stale == "refuse")


def _controls_book(setup: MachineSetup, db: Database, link: Link | None) -> ControlsBook | None:
    """The school's pushed controls a machine config asks for (``controls: school``), with the school's key."""
    if setup.config.controls != "school":
        return None
    key = link.trust.controls_key if link is not None else None
    if key is None or link is None or link.trust.school_seal is None:
        db.close()
        raise VendingError("controls: school: this machine takes the school's guardian controls but holds no "
                           "controls key or no school seal key (controls.key and school-seal.pub beside the "
                           "school's public key, as `vending keys dev-set` writes them)")  # fmt: skip
    return ControlsBook(db, key)


def _technician_desk(setup: MachineSetup, db: Database, state_dir: Path) -> TechnicianDesk | None:
    """The route technicians' cards a config lists (``technicians:``), with the vendor's key it names."""
    wanted, config = setup.config.technicians, setup.config
    if wanted is None:
        return None
    path = wanted.key_path(setup.path)
    try:
        key = bytes.fromhex(read_capped(path, KEY_FILE_BYTES).decode().strip())
    except (OSError, ValueError) as exc:
        db.close()
        raise VendingError(f"technicians.key: {path}: not a readable hex key ({exc})") from None
    if len(key) < 16:
        db.close()
        raise VendingError(f"technicians.key: {path}: a key of at least 16 bytes")
    return TechnicianDesk(db, key, wanted.cards, state_dir / wanted.dex_dir, config.zone, config.school.code,
                          config.currency)  # fmt: skip


def _secure_access_module(state_dir: Path, db: Database) -> Sam:
    """The SAM's key (on a real machine a chip; here ``card-master.key`` in the state dir, 0600)."""
    try:
        return Sam(read_card_master(state_dir))
    except VendingError as exc:
        db.close()
        raise VendingError(f"payment mode card needs the secure access module's key: {exc}") from None


def _open_books(state_dir: Path, setup: MachineSetup, link: Link | None) -> tuple[Database, MachineBooks, bool]:
    """The machine's database, its books (with the reporter when it reports) and whether it was new."""
    db = Database(state_dir / DB_FILE)
    books = MachineBooks.on(db, setup.config.currency)
    config = setup.config
    if config.payment.mode == "card":
        sam = _secure_access_module(state_dir, db)
        purse = CardPurse(db, books.journal, sam, config.id, config.currency, config.zone)
        if link is not None and link.trust.hotlist_key is not None:  # the issuer's pending credits, by its key
            purse.credits = CreditsBook(db, link.trust.hotlist_key)
        books = replace(books, payment=purse)
    elif config.payment.mode == "account":
        timeout_s, limit = config.payment.timeout_ms / 1000, config.payment.offline_limit
        account = IssuerAccount(db, books.journal, config.id, config.currency, config.zone, timeout_s, limit)
        books = replace(books, payment=account)
    if link is not None:
        trust = link.trust
        books.journal.reporter = reporter_for(setup, books, trust.issuer_seal, link.identity, trust.school_seal)
    fresh = db.meta("machine_id") is None
    if fresh:
        with db.atomic("stock"):
            db.set_meta("machine_id", setup.config.id)
            books.inventory.seed(setup)
    elif db.meta("machine_id") != setup.config.id:
        held = db.meta("machine_id")
        db.close()
        raise VendingError(f"--state-dir {state_dir} holds machine {held}, not {setup.config.id}; use another dir")
    if db.meta("timezone") != setup.config.zone.key:  # so a reader of the state dir shows local times
        with db.atomic("journal"):
            db.set_meta("timezone", setup.config.zone.key)
    return db, books, fresh
