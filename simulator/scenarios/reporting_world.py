"""Everything a run needs to report over MQTT: a broker, the vendor and issuer backends, one publisher per boot.

``vending run``/``demo`` use it with the embedded broker; tests use it with a real Mosquitto too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from firmware.app.commands import CommandProcessor
from firmware.app.node import Link, Node
from firmware.reporting.mqtt import BrokerAddress
from firmware.reporting.publisher import OutboxPublisher
from simulator.backends.issuer import IssuerBackend
from simulator.backends.purse_audit import undecided
from simulator.backends.school import SchoolBackend
from simulator.backends.service import BackendService
from simulator.backends.vendor import VendorBackend
from simulator.dev_keys import DevKeys
from simulator.scenarios.authorities import keep_controls, keep_hotlist, keep_refunds
from simulator.scenarios.card_specs import account_orders
from simulator.scenarios.runner import ScenarioRunner
from simulator.scenarios.schema import Step
from simulator.servers.broker import EmbeddedBroker
from simulator.servers.broker_setup import BrokerAccess
from simulator.servers.fault_proxy import FaultProxy
from simulator.servers.mosquitto import MosquittoProcess, secured_mosquitto
from simulator.servers.rabbitmq import CLUSTER, ClusterAccess, RabbitCluster, rabbit_cluster

Backend = TypeVar("Backend", VendorBackend, IssuerBackend)
log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 20.0
SUBSCRIBED_S = 15.0  # a backend on a fresh broker has connected and subscribed well within this
LAST_DAY = "9999-12-31"  # after every trading day


@dataclass
class ReportingWorld:
    """Broker + backends for one run. ``broker`` is ``embedded``, ``mosquitto`` or an ``mqtt://`` URL.

    ``mosquitto`` is the deployment's broker as ``vending broker setup`` writes it: TLS with a client
    certificate for every party, ACLs, and an insider account for captures.
    """

    workdir: Path
    broker: str = "embedded"
    heartbeat_s: float = 30.0
    resend_after_s: float = 3.0
    keys_dir: Path | None = None  # every party's keys (``vending keys dev-set`` layout); workdir/keys by default
    vendor_db: str | None = None  # SQLite file in workdir by default, or postgresql://...
    broker_address: BrokerAddress | None = None  # set by start(), or given to skip the broker's URL
    access: BrokerAccess | None = None  # each party's way in, set by start()
    owned_broker: EmbeddedBroker | MosquittoProcess | RabbitCluster | None = None
    cluster: RabbitCluster | None = None  # ``rabbitmq-cluster``: started by the run, or one a test session shares
    link: FaultProxy | None = None  # the machine's link to the broker; `broker: down` cuts it
    vendor: VendorBackend | None = None
    issuer: IssuerBackend | None = None
    runner: ScenarioRunner | None = None  # the run this world is attached to

    # On a broker the run does not own, its backends get ids of their own and clean sessions, so they
    # never take over (or leave queued sessions behind for) the backends that broker already serves.
    guest_id: str | None = None

    _keys: DevKeys | None = field(default=None, repr=False)
    school: SchoolBackend | None = None  # a `controls:` run's school: the guardian alerts its machines seal to it
    # what the authorities sent while the machines' link was cut, each to be seen through once it is back
    _awaiting_link: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def backend_client_id(self, party: str) -> str | None:
        """The run's own id for a party's backend on a guest broker; None: the party's usual id."""
        return f"{party}-backend-run-{self.guest_id}" if self.guest_id else None

    @property
    def keys(self) -> DevKeys:
        if self._keys is None:
            self._keys = DevKeys(self.keys_dir or self.workdir / "keys")
        return self._keys

    @property
    def issuer_keys(self) -> tuple[bytes, bytes]:
        """The issuer's sealing pair (private, public)."""
        return self.keys.seal_private, self.keys.seal_public

    def new_vendor(
        self,
        db: Path | str | None = None,
        client_id: str | None = None,
        group: str | None = None,
        identity: str = "vendor",
    ) -> VendorBackend:
        """A vendor backend with the vendor's key and the run's enrolment directory (not started).

        ``identity``: its broker certificate on a generated Mosquitto (``vendor-2`` for a second instance).
        """
        keys = self.keys
        target = db or self.vendor_db or self.workdir / "vendor.db"
        address = self.party_address(identity)
        client_id = client_id or self.backend_client_id("vendor")
        backend = VendorBackend(
            address, target, keys.vendor, keys.enrolment, client_id, group, keys.school.public, self.guest_id is None
        )
        return self._on_cluster(backend, identity)

    def _on_cluster(self, backend: Backend, identity: str) -> Backend:
        """On a RabbitMQ cluster a backend is a competing consumer of its party's quorum queue (AMQP)."""
        if isinstance(self.access, ClusterAccess):
            backend.use_amqp(self.access.amqp(identity))
        return backend

    def school_up(self) -> SchoolBackend:
        """The school's backend for guardian alerts (started once, by a run whose machines take its controls)."""
        if self.school is None:
            keys, client_id = self.keys, self.backend_client_id("school")
            address, db = self.party_address("school"), self.workdir / "school.db"  # beside the roster
            school = SchoolBackend(address, db, keys.school_seal_private, keys.school, keys.enrolment, client_id,
                                   persistent=self.guest_id is None)  # fmt: skip
            self.school = school.start()
            if not school.subscribed.wait(15):
                raise RuntimeError(f"{school.client_id} could not connect to {self.address}")
        return self.school

    def new_issuer(self, identity: str = "issuer") -> IssuerBackend:
        """``identity``: ``issuer-2`` for a second instance (it shares the issuer's database file)."""
        keys = self.keys
        address = self.party_address(identity)
        db = self.workdir / "issuer.db"
        client_id = self.backend_client_id("issuer") or (f"{identity}-backend" if identity != "issuer" else None)
        school, persistent = keys.school.public, self.guest_id is None
        backend = IssuerBackend(address, db, keys.seal_private, keys.issuer, keys.enrolment, client_id, school,
                                persistent, hotlist_key=keys.trust.hotlist_key)  # fmt: skip
        return self._on_cluster(backend, identity)

    @property
    def address(self) -> BrokerAddress:
        """An address with every right on the broker (see BrokerAccess.shared)."""
        return self.broker_access().shared

    def party_address(self, party: str) -> BrokerAddress:
        return self.broker_access().party(party)

    def machine_address(self, machine: str) -> BrokerAddress:
        """The machine's way in, through the fault proxy once the world has started."""
        if self.cluster is not None:
            self.cluster.enrol([machine])
        address = self.broker_access().machine(machine)
        return replace(address, dial=self.link.address) if self.link is not None else address

    def broker_access(self) -> BrokerAccess:
        if self.access is None:
            if self.broker_address is None:
                raise RuntimeError("the reporting world has not started: no broker address yet")
            self.access = BrokerAccess(self.broker_address)
        return self.access

    # ---- broker and backends --------------------------------------------------------------------
    def start(self) -> ReportingWorld:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.broker == "embedded":
            self.owned_broker = EmbeddedBroker().start()
            self.broker_address = BrokerAddress("127.0.0.1", self.owned_broker.port)
        elif self.broker == "mosquitto":
            self.owned_broker, self.access = secured_mosquitto(self.workdir)
        elif self.broker == CLUSTER:
            if self.cluster is None:
                self.cluster = self.owned_broker = rabbit_cluster(self.workdir / "rabbitmq").start()
            self.access = self.cluster.access()
        elif self.broker_address is None:
            self.broker_address = BrokerAddress.parse(self.broker)
        try:
            if self.cluster is None:  # on a cluster machines reach every node themselves (no single link to cut)
                self.link = FaultProxy(self.address.endpoint).start()
            vendor = self.vendor = self.new_vendor().start()
            issuer = self.issuer = self.new_issuer().start()
            for backend in (vendor, issuer):
                if not backend.subscribed.wait(SUBSCRIBED_S):
                    raise RuntimeError(self._not_subscribed(backend))
        except BaseException:
            self.stop()  # a world that did not start leaves nothing running behind its one error
            raise
        return self

    def _not_subscribed(self, backend: BackendService) -> str:
        """Why a backend has no subscriptions: never connected, or connected and never confirmed; the broker's end."""
        connected = backend.connected.is_set()
        stage = "connected, but its subscriptions were never confirmed" if connected else "never connected"
        broker = self.owned_broker.diagnosis() if isinstance(self.owned_broker, MosquittoProcess) else ""
        return f"{backend.client_id} {stage} to {self.address} within {SUBSCRIBED_S:.0f} s. {broker}".rstrip()

    def describe_broker(self) -> str:
        """One line for the user: where the broker listens and how to watch it."""
        address = self.address
        if self.broker == "embedded":
            host, port = address.endpoint
            return f"embedded MQTT broker on {address} (watch: mosquitto_sub -h {host} -p {port} -t '#' -v)"
        if self.broker == "mosquitto" and self.access is not None and self.access.setup is not None:
            clients = self.access.setup.directory / "clients"
            return f"mosquitto (TLS, ACL) on {address}; certificates for watching it in {clients}"
        return f"MQTT broker {address}"

    def stop(self) -> None:
        for backend in (self.vendor, self.issuer, self.school):
            if backend is not None:
                backend.stop()
        if self.link is not None:
            self.link.close()
        if self.owned_broker is not None:
            self.owned_broker.close()

    def broker_down(self) -> None:
        """An outage: the machine's link to the broker fails (the fault proxy resets it), on every kind of broker."""
        if self.link is not None:
            self.link.down()

    def broker_up(self) -> None:
        """The link is back: the machines take what the authorities sent meanwhile (``once_linked``)."""
        if self.link is not None:
            self.link.up()
        waiting, self._awaiting_link = self._awaiting_link, []
        for deliver in waiting:
            deliver()

    def once_linked(self, deliver: Callable[[], None]) -> None:
        """``deliver`` now, or at ``broker: up``: the broker holds a list retained, a command for the session."""
        if self.broker_is_up:
            deliver()
        else:
            self._awaiting_link.append(deliver)

    def vendor_down(self) -> None:
        """The vendor's backend crashes; its persistent session stays at the broker."""
        if self.vendor is not None:
            self.vendor.abandon()
            self.vendor = None

    def vendor_up(self) -> None:
        if self.vendor is None:
            self.vendor = self.new_vendor().start()
            self.vendor.subscribed.wait(15)

    def issuer_down(self) -> None:
        """The issuer's backend crashes: no answers to authorisation requests, outcomes wait in the outbox."""
        if self.issuer is not None:
            self.issuer.abandon()
            self.issuer = None

    def issuer_up(self) -> None:
        if self.issuer is None:
            self.issuer = self.new_issuer().start()
            self.issuer.subscribed.wait(15)

    @property
    def backend_is_up(self) -> bool:
        """Both backends: only then can the outbox drain."""
        return self.vendor is not None and self.issuer is not None

    @property
    def broker_is_up(self) -> bool:
        return self.link is None or self.link.is_up

    def _count_credits(self, runner: ScenarioRunner) -> None:
        """Purse cards: the refunds the issuer still owes to cards count in the run's money.

        Not counted (``None``) while a refund, a step left to the issuer or a card's report of having a
        credit waits in an outbox, while the issuer has not decided a step left to it, or while a
        machine cannot tell whether a pulled card has a credit it began to write.
        """

        def issuer_money() -> int | None:
            waiting = sum(
                node.db.conn.execute(
                    "SELECT (SELECT COUNT(*) FROM outbox WHERE topic LIKE '%/credit' OR topic LIKE '%/credit-given' "
                    "OR topic LIKE '%/unresolved') + (SELECT COUNT(*) FROM credit_attempts)"
                ).fetchone()[0]
                for node in runner.nodes()
            )
            if waiting or self.issuer is None or undecided(self.issuer.store):
                return None
            return self.issuer.credits.pending()

        runner.issuer_money = issuer_money

    def _hold_accounts(self, runner: ScenarioRunner) -> None:
        """``payment: account``: the run's cards become accounts at this world's issuer, and its money counts."""
        assert self.issuer is not None
        book, start = self.issuer.accounts, runner.scenario.start.date()
        for name, card in runner.scenario.cards.items():
            if book.get(card.uid) is None:
                for order in account_orders(card.uid, card.profile, card.account_at_issuer(name, start), start):
                    book.order(self.keys.issuer, order)

        def drained() -> bool:
            publisher = self.publisher
            up = self.broker_is_up and self.backend_is_up and publisher is not None
            return up and publisher is not None and publisher.flush(FLUSH_TIMEOUT_S)

        def issuer_money() -> int | None:
            """The accounts' money, less the offline debts the issuer declined (vended, never collected)."""
            if self.issuer is None or not drained():
                return None
            return self.issuer.accounts.total() - sum(amount for _, _, amount in self.issuer.accounts.declined_debts())

        def issuer_balance(uid: str) -> int:
            drained()
            account = self.issuer.accounts.get(uid) if self.issuer is not None else None
            return account.balance if account is not None else 0

        def issuer_step(step: Step) -> None:
            self.issuer_up() if step.value == "up" else self.issuer_down()

        runner.hooks["issuer"] = issuer_step
        runner.issuer_money, runner.issuer_balance = issuer_money, issuer_balance
        runner.starting_total += book.total()

    # ---- the machine side ----------------------------------------------------------------------
    def machine_link(self, machine: str) -> Link:
        """A machine's link: its way in (through the fault proxy once started), the run's trust, its own key.

        Before the world has a broker, the link has no address: the machine fills its outbox, signed and sealed.
        """
        has_broker = self.broker_address is not None or self.access is not None
        return Link(
            self.machine_address(machine) if has_broker else None,
            self.keys.trust,
            self.keys.machine(machine),
            heartbeat_s=self.heartbeat_s,
            resend_after_s=self.resend_after_s,
        )

    @property
    def publisher(self) -> OutboxPublisher | None:
        """The attached run's machine's publisher (a new one after each power cycle)."""
        return self.runner.machine.publisher if self.runner is not None else None

    @property
    def commands(self) -> CommandProcessor | None:
        return self.runner.machine.commands if self.runner is not None else None

    def __call__(self, runner: ScenarioRunner) -> Any:
        """Attach to a scenario runner (built with this world's ``machine_link``); returns the detach function."""
        self.runner = runner

        def outbox() -> int:
            """Drained when it can drain; with the backend down, once every row reached the broker."""
            assert self.publisher is not None
            if self.broker_is_up and self.backend_is_up:
                self.publisher.flush(FLUSH_TIMEOUT_S)
            elif self.broker_is_up:
                self.publisher.wait_published(FLUSH_TIMEOUT_S)
            return self.publisher.depth()

        def backend_sales() -> int:
            assert self.publisher is not None and self.vendor is not None
            self.publisher.flush(FLUSH_TIMEOUT_S)
            return int(self.vendor.store.execute("SELECT COUNT(*) FROM sales WHERE outcome = 'vended'")[0][0])

        def broker_step(step: Step) -> None:
            self.broker_up() if step.value == "up" else self.broker_down()

        def backend_step(step: Step) -> None:
            self.vendor_up() if step.value == "up" else self.vendor_down()

        def announced(machine: Node) -> None:
            """A boot's stock snapshot is delivered before the first step when it can be.

            Steps that count the outbox then count what they did, not whether the announcement was acked yet.
            """
            if machine.publisher is not None and self.broker_is_up and self.backend_is_up:
                machine.publisher.flush(FLUSH_TIMEOUT_S)

        runner.on_boot.append(announced)
        runner.hooks["broker"] = broker_step
        runner.hooks["backend"] = backend_step
        if runner.scenario.machine.config.payment.mode == "account":
            self._hold_accounts(runner)
        elif runner.scenario.machine.config.payment.mode == "card":
            self._count_credits(runner)
        if runner.scenario.machine.config.hotlist is not None:
            keep_hotlist(self, runner)
        if runner.scenario.machine.config.controls == "school":
            keep_controls(self, runner)
        keep_refunds(self, runner)
        runner.probes["outbox"] = outbox
        runner.probes["backend_sales"] = backend_sales

        def detach() -> None:
            if waiting := len(self._awaiting_link):  # the story ended with the link cut: the broker holds them
                log.warning("%d authority message(s) never reached the machines: no `broker: up`", waiting)
            for machine in runner.nodes():  # every machine of the run (stations.py)
                if machine.publisher is None:
                    continue
                for day in machine.books.open_days(LAST_DAY):  # today too: the run's reports all go out
                    machine.controller.close_day(day)
                if not machine.disconnect(FLUSH_TIMEOUT_S if self.broker_is_up else 0.0) and self.broker_is_up:
                    log.warning("reports of %s still in the outbox at the end of the run", machine.machine_id)

        return detach
