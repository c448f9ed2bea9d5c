"""Term keys: private files, never overwritten by accident, valid for one term, rotated without a restart."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from firmware.identity.keys import TermKeyError, TermKeyring, key_path, load_key, read_key, school_term, write_key
from firmware.identity.secretfile import SecretFileError
from firmware.journal.database import Database
from simulator.cli import app
from simulator.scenarios import load_scenario
from simulator.scenarios.runner import ScenarioRunner
from tests.conftest import ROOT

UID = "04A1B2C3D4E5F6"
END_OF_TERM = date(2026, 7, 31)

TAP = "TPE-DAAN-JH-01-5f0e3c2a9b7d1e46"  # a visit: the transaction id names it


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_term_key_is_private_from_the_start_and_never_silently_replaced(tmp_path: Path) -> None:
    path = write_key(tmp_path / "state", "2026-1", END_OF_TERM)
    assert mode(path) == 0o600 and mode(tmp_path / "state") == 0o700
    first = load_key(tmp_path / "state")(UID, TAP)
    with pytest.raises(SecretFileError, match="refusing to overwrite"):
        write_key(tmp_path / "state", "2026-2", END_OF_TERM)
    assert load_key(tmp_path / "state")(UID, TAP) == first
    write_key(tmp_path / "state", "2026-2", date(2027, 1, 31), force=True)
    second = load_key(tmp_path / "state")
    assert second.term == "2026-2" and second(UID, TAP) != first and mode(path) == 0o600
    assert len(first) == 26 and first == first.lower()


def test_two_visits_of_one_card_never_share_a_pseudonym_even_in_the_same_minute(tmp_path: Path) -> None:
    """Issue 30: keyed by the minute, two taps of one card in one minute were one linkable name."""
    write_key(tmp_path, "2026-1", END_OF_TERM)
    name = load_key(tmp_path)
    visits = [f"M-1-{n:016x}" for n in range(1000)]
    assert len({name(UID, visit) for visit in visits}) == len(visits)
    assert name(UID, visits[0]) == name(UID.lower(), visits[0])  # one card, however its uid is spelt


def test_a_card_s_visits_in_one_minute_reach_the_journal_under_different_pseudonyms(tmp_path: Path) -> None:
    """The sold-out scenario: amy buys, then is refused, seconds apart in one minute (virtual time)."""
    import json

    runner = ScenarioRunner(load_scenario(ROOT / "configs/scenarios/sold-out.yaml"), tmp_path / "machine")
    try:
        assert runner.run().passed
        rows = runner.machine.db.conn.execute(
            "SELECT at, txn_id, data FROM journal WHERE kind IN ('vend_completed', 'denied') ORDER BY id"
        ).fetchall()
    finally:
        runner.close()
    visits = {(txn, json.loads(data)["pseudonym"], at[:16]) for at, txn, data in rows}
    minutes = [minute for *_, minute in visits]
    assert len(minutes) > len(set(minutes)), "two visits share a minute in this scenario"
    assert len({pseudonym for _, pseudonym, _ in visits}) == len({txn for txn, _, _ in visits})


def test_the_machine_database_and_its_directory_are_private(tmp_path: Path) -> None:
    db = Database(tmp_path / "machine" / "machine.db")
    with db.atomic("journal"):
        db.set_meta("k", "v")
    assert mode(tmp_path / "machine") == 0o700
    assert {mode(p) for p in (tmp_path / "machine").iterdir()} == {0o600}  # the db, its WAL and shared memory
    db.close()


def test_a_key_is_valid_through_its_last_day_and_refused_after(tmp_path: Path) -> None:
    write_key(tmp_path, "2026-1", END_OF_TERM)
    keyring = TermKeyring(tmp_path)
    keyring.check_valid(END_OF_TERM)
    with pytest.raises(TermKeyError, match="expired on 2026-07-31"):
        keyring.check_valid(date(2026, 8, 1))


def test_a_rotated_key_is_loaded_and_a_broken_one_keeps_the_current(tmp_path: Path) -> None:
    write_key(tmp_path, "2026-1", END_OF_TERM)
    keyring = TermKeyring(tmp_path)
    first = keyring(UID, TAP)
    assert keyring.refresh(date(2026, 3, 2)) is False  # unchanged
    write_key(tmp_path, "2026-2", date(2027, 1, 31), force=True)
    assert keyring.refresh(date(2026, 3, 2)) and keyring.term == "2026-2" and keyring(UID, TAP) != first
    key_path(tmp_path).write_text("{broken")
    assert keyring.refresh(date(2026, 3, 2)) is False and keyring.term == "2026-2"


def scenario_runner(tmp_path: Path) -> ScenarioRunner:
    return ScenarioRunner(load_scenario(ROOT / "configs/scenarios/normal-morning.yaml"), tmp_path / "machine")


def test_a_machine_never_invents_a_key_and_refuses_an_expired_one(tmp_path: Path) -> None:
    from firmware.app.node import Node

    runner = scenario_runner(tmp_path)  # the simulator made a key for its state dir, on purpose
    runner.close()
    setup, hardware = runner.scenario.machine, runner.machine.controller.hw
    with pytest.raises(TermKeyError, match="no term key"):
        Node(setup, tmp_path / "elsewhere", hardware)
    write_key(tmp_path / "expired", "2025-2", date(2026, 1, 31))
    with pytest.raises(TermKeyError, match="expired"):
        Node(setup, tmp_path / "expired", hardware)


def test_a_running_machine_picks_up_a_rotated_key_without_a_restart(tmp_path: Path, closing) -> None:
    runner = closing(scenario_runner(tmp_path))
    runner.start()
    machine = runner.machine
    now = runner.clock.now()
    before = machine.controller.pseudonym(UID, now)
    write_key(tmp_path / "machine", "2026-2", date(2027, 1, 31), force=True)
    machine.tick()  # what the loop runs between events
    assert machine.keyring.term == "2026-2" and machine.controller.pseudonym(UID, now) != before


def test_keys_commands_refuse_to_overwrite_without_force(tmp_path: Path) -> None:
    cli = CliRunner()
    init = ["keys", "init", "--state-dir", str(tmp_path), "--valid-until", "2099-07-31"]
    assert cli.invoke(app, init).exit_code == 0
    again = cli.invoke(app, init)
    assert again.exit_code == 2 and "use --force" in again.stderr
    assert cli.invoke(app, ["keys", "party", "issuer", "--out", str(tmp_path)]).exit_code == 0
    private = (tmp_path / "issuer.key").read_bytes()
    sealing = (tmp_path / "issuer-seal.key").read_bytes()
    assert mode(tmp_path / "issuer.key") == mode(tmp_path / "issuer-seal.key") == 0o600
    refused = cli.invoke(app, ["keys", "party", "issuer", "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "use --force" in refused.stderr
    assert (tmp_path / "issuer.key").read_bytes() == private and (tmp_path / "issuer-seal.key").read_bytes() == sealing
    bad_date = cli.invoke(app, [*init[:-1], "end of term", "--force"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.stderr


def test_retiring_a_term_destroys_its_key_and_nothing_on_the_machine_can_link_its_pseudonyms(
    tmp_path: Path, closing
) -> None:
    runner = closing(scenario_runner(tmp_path))
    runner.run()  # a morning of sales under the term key
    state = tmp_path / "machine"
    key = read_key(state)
    cli = CliRunner()
    wrong = cli.invoke(app, ["keys", "retire", "--state-dir", str(state), "--term", "not-this-one"])
    assert wrong.exit_code == 2 and f"holds term {key.term!r}" in wrong.output and key_path(state).exists()

    retired = cli.invoke(app, ["keys", "retire", "--state-dir", str(state), "--term", key.term])
    assert retired.exit_code == 0, retired.output
    assert not key_path(state).exists()
    with pytest.raises(TermKeyError, match="no term key"):
        load_key(state)
    for path in state.rglob("*"):  # the machine never kept a copy: its database, WAL, anything
        if path.is_file():
            data = path.read_bytes()
            assert key.key not in data and key.key.hex().encode() not in data, f"the term key survives in {path}"


def test_keys_init_and_rotate_refuse_a_day_that_has_passed(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "init", "--state-dir", str(tmp_path), "--valid-until", "2020-01-31"])
    assert result.exit_code == 2 and "--valid-until 2020-01-31: that day has passed" in result.stderr
    assert not list(tmp_path.iterdir()), "nothing written"
    assert (
        CliRunner().invoke(app, ["keys", "init", "--state-dir", str(tmp_path), "--valid-until", "2099-01-31"]).exit_code
        == 0
    )
    before = (tmp_path / "term_key.json").read_bytes()
    rotated = CliRunner().invoke(
        app, ["keys", "rotate", "--state-dir", str(tmp_path), "--term", "2026-2", "--valid-until", "2020-06-30"]
    )
    assert rotated.exit_code == 2 and "--valid-until 2020-06-30: that day has passed" in rotated.stderr
    assert (tmp_path / "term_key.json").read_bytes() == before, "the current term's key is kept"


def test_rotating_back_to_a_term_name_used_before_is_refused(tmp_path: Path) -> None:
    """A term name names one key: the school finds a term's records by it (its --terms directory)."""
    cli = CliRunner()

    def keys(*args: str) -> Any:
        return cli.invoke(app, ["keys", *args, "--state-dir", str(tmp_path), "--valid-until", "2099-01-31"])

    assert keys("init", "--term", "2026-1").exit_code == 0
    assert keys("rotate", "--term", "2026-2").exit_code == 0
    assert keys("rotate", "--term", "2027-1").exit_code == 0
    assert read_key(tmp_path).earlier == ("2026-1", "2026-2")
    before = key_path(tmp_path).read_bytes()
    for used in ("2026-1", "2026-2"):
        again = keys("rotate", "--term", used)
        assert again.exit_code == 2 and f"term {used} was this machine's before" in again.stderr, again.output
        assert key_path(tmp_path).read_bytes() == before, "the current term's key is kept"
    assert b"2026-1" in before and read_key(tmp_path).term == "2027-1"


def test_keys_are_not_written_where_git_would_pick_them_up(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/ignored/\n")
    cli = CliRunner()
    tracked = cli.invoke(app, ["keys", "party", "vendor", "--out", str(tmp_path / "keys")])
    assert tracked.exit_code == 2 and "git does not ignore them" in tracked.stderr
    assert not (tmp_path / "keys" / "vendor.key").exists()
    assert cli.invoke(app, ["keys", "party", "vendor", "--out", str(tmp_path / "ignored")]).exit_code == 0


@pytest.mark.parametrize(
    ("day", "term"),
    [
        (date(2026, 1, 31), ("2025-2", date(2026, 1, 31))),
        (date(2026, 2, 1), ("2026-1", date(2026, 7, 31))),
        (date(2026, 7, 31), ("2026-1", date(2026, 7, 31))),
        (date(2026, 8, 1), ("2026-2", date(2027, 1, 31))),
        (date(2026, 12, 7), ("2026-2", date(2027, 1, 31))),
    ],
)
def test_a_day_s_school_term_is_taiwan_s_semester(day: date, term: tuple[str, date]) -> None:
    assert school_term(day) == term


def test_keys_init_without_a_term_or_a_date_makes_this_term_s_key(tmp_path: Path) -> None:
    """The default term was "2026-1" whatever the day, and the README's `--valid-until 2027-01-31` would have
    failed its own walkthrough (and `make test`) from February 2027: a date written in a guide expires."""
    made = CliRunner().invoke(app, ["keys", "init", "--state-dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    key, today = read_key(tmp_path), date.today()
    assert (key.term, key.valid_until) == school_term(today)
    assert key.valid_until >= today and (key.valid_until.month, key.valid_until.day) in ((1, 31), (7, 31))
    assert f"for term {key.term}, valid until {key.valid_until.isoformat()}" in made.output
