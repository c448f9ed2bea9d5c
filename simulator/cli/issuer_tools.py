"""``vending issuer``: the card issuer's people's tools.

Each acts on the issuer's database and pushes what changed to the machines, under the tools' own
broker certificate (``issuer-ops``: the backend's would throw the running backend off the broker).

``hotlist`` keeps the lost-card list; ``verdict`` is a reviewer's decision on a purse step that the
card's counters cannot decide (``simulator/backends/purse_review.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from firmware.identity.keyset import HOTLIST
from simulator.cli.connection import CaFile, CertFile, CertKey, Password, Username, broker_address
from simulator.cli.exits import check_card_uids, existing_db, fail
from simulator.cli.issuer import Db
from simulator.cli.reporting import party_identity, shared_key

issuer_tool_app = typer.Typer(
    no_args_is_help=True, help="The card issuer's own tools: the lost-card hotlist, a reviewer's purse verdicts."
)
hotlist_app = typer.Typer(no_args_is_help=True, help="Lost cards: list, unlist, publish to the machines.")
issuer_tool_app.add_typer(hotlist_app, name="hotlist")
Keys = Annotated[Path, typer.Option(help="The issuer's key directory (issuer.key and hotlist.key).")]
Broker = Annotated[str, typer.Option(help="mqtt://host:port or mqtts://host:port")]
ValidHours = Annotated[
    int, typer.Option(min=1, max=24 * 14, help="How long the published list is valid: republish at least this often.")
]
Cards = Annotated[list[str], typer.Option("--card", help="A card's uid (hex); repeat for more.")]


def _hotlist(
    keys: Path, db: Path, broker: str, add: set[str], remove: set[str], valid_hours: int,
    username: str | None, password: str | None, ca: Path | None, cert: Path | None, cert_key: Path | None,
) -> None:  # fmt: skip
    """Change the list (if asked), then publish the change and the whole list, signed and sealed."""
    from datetime import UTC, datetime

    from simulator.backends.hotlist import HotlistRegistry, messages
    from simulator.backends.push import publish
    from simulator.backends.signer import ForeignSigner

    check_card_uids(add | remove)
    if not (add or remove):  # publish: a mistyped --db made an empty list and published it as version 1
        existing_db(db, "`vending issuer hotlist add`")
    identity = party_identity("issuer", keys / "issuer.key")
    key = shared_key(keys, HOTLIST, "issuer")
    address = broker_address(broker, username, password, ca, cert, cert_key)
    registry = HotlistRegistry(db)
    try:
        now = datetime.now(UTC)
        change = registry.change(add, remove, now, identity)  # a new version each time: a newer expiry is news too
        listed, version = len(registry.listed()), registry.version()
        publish(address, messages(registry, change, identity, key, now, valid_hours), "issuer-hotlist")
    except ForeignSigner as exc:  # before anything was recorded
        fail(exc)
    except (OSError, RuntimeError) as exc:
        fail(f"--broker {address}: {exc}; the list is kept as version {version} ({listed} card(s)) but the machines "
             "do not have it: run `vending issuer hotlist publish` once the broker answers")  # fmt: skip
    finally:
        registry.close()
    typer.echo(f"hotlist version {version}: {listed} card(s) listed, published to {address}, valid {valid_hours} h")


@hotlist_app.command("add")
def hotlist_add(
    card: Cards, keys: Keys, broker: Broker, db: Db = Path("issuer.db"), valid_hours: ValidHours = 24,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """List lost or stolen cards: every machine refuses them once it has the list (`card_blocked`)."""
    _hotlist(keys, db, broker, set(card), set(), valid_hours, username, password, ca, cert, cert_key)


@hotlist_app.command("remove")
def hotlist_remove(
    card: Cards, keys: Keys, broker: Broker, db: Db = Path("issuer.db"), valid_hours: ValidHours = 24,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Unlist cards (found again)."""
    _hotlist(keys, db, broker, set(), set(card), valid_hours, username, password, ca, cert, cert_key)


@hotlist_app.command("publish")
def hotlist_publish(
    keys: Keys, broker: Broker, db: Db = Path("issuer.db"), valid_hours: ValidHours = 24,
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Publish the list again with a new expiry (run at least every --valid-hours, e.g. from cron)."""
    _hotlist(keys, db, broker, set(), set(), valid_hours, username, password, ca, cert, cert_key)


@issuer_tool_app.command("verdict")
def verdict(
    machine: Annotated[str, typer.Option(help="The machine that left the step (as `backend issuer purses` shows).")],
    txn: Annotated[str, typer.Option(help="The step's transaction id.")],
    made: Annotated[
        bool, typer.Option("--made/--not-made", help="Whether the step is on the card, from the card's full record.")
    ],
    reason: Annotated[str, typer.Option(help="What the verdict rests on; kept with it for audit.")],
    keys: Keys,
    broker: Broker,
    db: Db = Path("issuer.db"),
    username: Username = None, password: Password = None, ca: CaFile = None, cert: CertFile = None,
    cert_key: CertKey = None,
) -> None:  # fmt: skip
    """Decide a purse step the card's counters cannot (a store's top-up after it); publish what the card is owed.

    A debit made with nothing vended, or a refund never made, goes on the credits list every machine of
    the school gives at the card's next tap. Only a step whose verdict is ``unknown``, once.
    """
    from datetime import UTC, datetime

    from simulator.backends.credits import PendingCredits
    from simulator.backends.purse_review import ReviewRefused, review
    from simulator.backends.push import publish
    from simulator.backends.store import SqliteReportStore

    existing_db(db, "the issuer's backend")
    identity = party_identity("issuer", keys / "issuer.key")
    key = shared_key(keys, HOTLIST, "issuer")
    address = broker_address(broker, username, password, ca, cert, cert_key)
    store = SqliteReportStore(db, "issuer")
    try:
        credits = PendingCredits(store, identity, key)
        now = datetime.now(UTC)
        decided = review(credits, machine, txn, made, reason, now)
        message = credits.message(now)
    except ReviewRefused as exc:
        fail(exc)
    finally:
        store.close()
    listed = f"NT${decided.listed} listed for the card" if decided.listed else "nothing owed to the card"
    assert message is not None  # the hotlist key was read above
    try:
        publish(address, [(*message, True)], "issuer-credits")
    except (OSError, RuntimeError) as exc:
        fail(f"--broker {address}: {exc}; the verdict is recorded ({listed}): the issuer's backend sends the list "
             "with its next change to it")  # fmt: skip
    typer.echo(f"{machine} {txn}: {decided.step.verdict} (reviewed), {listed}; the credits list published to {address}")
