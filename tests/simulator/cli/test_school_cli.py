"""`vending backend school` and `vending school export|erase` as a school's IT person runs them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.scenarios import load_scenario, run_scenario
from simulator.scenarios.reporting_world import ReportingWorld
from simulator.school.store import SchoolStore
from tests.conftest import ROOT, vending_on_a_full_disk

ROSTER = (
    "student,card_uid,profile,linked,daily_limit\namy,04A1B2C3D4E5F6,student,true,\nkai,04C3D4E5F60718,student,yes,40\n"
)


def test_backend_school_imports_the_roster_into_a_private_database(tmp_path: Path) -> None:
    (tmp_path / "roster.csv").write_text(ROSTER)
    result = CliRunner().invoke(
        app, ["backend", "school", "--db", str(tmp_path / "school.db"), "--roster", str(tmp_path / "roster.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "2 student(s)" in result.output
    assert os.stat(tmp_path / "school.db").st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("roster", "reason"),
    [
        ("student,card\namy,04A1B2C3D4E5F6\n", "line 1: missing column(s) card_uid"),
        ("student,card_uid\namy,04A1B2C3D4E5F6\nben,XYZ\n", "line 3: card_uid: expected 4, 5, 7 or 10 bytes"),
        ("student,card_uid\namy,04A1B2C3D4E5F6\namy,04B2C3D4E5F607\n", "line 3: student: 'amy' appears twice"),
        ("student,card_uid,linked\namy,04A1B2C3D4E5F6,maybe\n", "line 2: linked: expected true or false"),
        ("student,card_uid,daily_limit\namy,04A1B2C3D4E5F6,-5\n", "line 2: daily_limit"),
        ("student,card_uid,daily_limit\namy,04A1B2C3D4E5F6,²\n", "line 2: daily_limit"),  # isdigit() took it: exit 70
        ("student,card_uid,school\namy,04A1B2C3D4E5F6,TPE-DAAN\n", "line 2: school: expected 1-6 letters or digits"),
        ("student,card_uid,colour\namy,04A1B2C3D4E5F6,red\n", "line 1: unknown column 'colour'"),
        ("student,card_uid,school\namy,04A1B2C3D4E5F6,12/#\n", "line 2: school: expected 1-6 letters or digits"),
        ("student,card_uid,profile\n", "line 1: no student after the header"),  # it emptied the roster
        ("student,card_uid\n\n\n", "line 1: no student after the header"),
    ],
)
def test_a_bad_roster_is_refused_by_line_and_the_old_roster_stays(tmp_path: Path, roster: str, reason: str) -> None:
    db = tmp_path / "school.db"
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(ROSTER)
    bad.write_text(roster)
    assert CliRunner().invoke(app, ["backend", "school", "--db", str(db), "--roster", str(good)]).exit_code == 0
    result = CliRunner().invoke(app, ["backend", "school", "--db", str(db), "--roster", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: {reason}" in result.output
    assert "04B2C3D4E5F607" not in result.output  # a card number is never echoed
    kept = SchoolStore(db)
    try:
        assert kept.count() == 2 and kept.student("kai").daily_limit == 40  # read back, not imported again
    finally:
        kept.close()


def test_export_and_erase_from_the_command_line(tmp_path: Path) -> None:
    world = ReportingWorld(tmp_path / "world", broker="embedded", resend_after_s=1.0).start()
    try:
        assert run_scenario(
            load_scenario(ROOT / "configs/scenarios/demo-school-day.yaml"), tmp_path / "m", attach=world
        ).passed
        (tmp_path / "roster.csv").write_text(ROSTER)
        db = str(tmp_path / "school.db")
        CliRunner().invoke(app, ["backend", "school", "--db", db, "--roster", str(tmp_path / "roster.csv")])
        term = json.loads((tmp_path / "m/term_key.json").read_text())["term"]
        common = ["--db", db, "--student", "amy", "--term", term, "--terms", str(tmp_path / "m")]
        common += ["--keys", str(world.keys.directory), "--broker", f"mqtt://{world.address.host}:{world.address.port}"]
        common += ["--machine", "TPE-DAAN-JH-01"]  # the school's machines: every request reads all of them
        exported = CliRunner().invoke(app, ["school", "export", *common, "--out", str(tmp_path / "out")])
        assert exported.exit_code == 0, exported.output
        assert "2 vendor record(s), 1 issuer day(s), 0 issuer week(s)" in exported.output
        written = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
        assert sorted(written) == ["access.csv", "access.json", "summary.md"]
        (tmp_path / "mine").mkdir(mode=0o755)
        (tmp_path / "mine" / "notes.txt").write_text("somebody's")
        for taken, reason in ((tmp_path / "out", "holds files already"), (tmp_path / "mine", "holds files already"),
                              (tmp_path / "roster.csv", "not a directory")):  # fmt: skip
            again = CliRunner().invoke(app, ["school", "export", *common, "--out", str(taken)])
            assert again.exit_code == 2 and f"--out {taken}: {reason}" in again.output, again.output
        assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == written
        assert stat.S_IMODE((tmp_path / "mine").stat().st_mode) == 0o755, "somebody's directory is not chmod-ed"
        erased = CliRunner().invoke(app, ["school", "erase", *common, "--json"])
        assert erased.exit_code == 0, erased.output
        assert len(json.loads(erased.output)["erased"]) == 2
        wrong = CliRunner().invoke(
            app, ["school", "export", *common[:5], "other-term", *common[6:], "--out", str(tmp_path / "o2")]
        )
        assert wrong.exit_code == 2 and "no key of term 'other-term'" in wrong.output
        nobody = CliRunner().invoke(
            app, ["school", "export", *common[:3], "zoe", *common[4:], "--out", str(tmp_path / "o3")]
        )
        assert nobody.exit_code == 2 and "'zoe' is not on the school's roster" in nobody.output
        moved = [*common[:7], str(tmp_path / "no-such-dir"), *common[8:]]  # --terms: a directory that is not there
        nowhere = CliRunner().invoke(app, ["school", "export", *moved, "--out", str(tmp_path / "o4")])
        assert nowhere.exit_code == 2 and "no-such-dir: no such directory (the school's term keys" in nowhere.output
        for wait in ("nan", "-1"):  # nan waited for an answer forever; -1 was exit 70
            waited = CliRunner().invoke(app, ["school", "erase", *common, "--wait", wait])
            assert waited.exit_code == 2 and "--wait: expected a number of seconds from 0" in waited.output
    finally:
        world.stop()


def test_approve_refund_signs_one_refund_of_one_machine_s_sale_and_refuses_what_names_none(tmp_path: Path) -> None:
    """It signed any text as a txn and any machine: an approval no machine could ever use."""
    from firmware.identity.signing import PublicKey, TrustStore

    keys = tmp_path / "keys"
    assert CliRunner().invoke(app, ["keys", "dev-set", "--dir", str(keys)]).exit_code == 0
    approve = ["school", "approve-refund", "--keys", str(keys), "--amount", "500"]
    out = tmp_path / "approval.json"
    made = CliRunner().invoke(app, [*approve, "--machine", "M-1", "--txn", "M-1-0123456789abcdef", "--out", str(out)])
    assert made.exit_code == 0, made.output
    signed = TrustStore([PublicKey.load("school", keys / "school.pub")]).verify(json.loads(out.read_text()))
    assert json.loads(signed.payload) == {"approve": "refund", "machine": "M-1", "txn": "M-1-0123456789abcdef",
                                          "amount": 500}  # fmt: skip
    for machine, txn, reason in (
        ("M-1", "bad", "--txn 'bad': a transaction of M-1 reads M-1-<16 hex digits>"),
        ("M-1", "M-2-0123456789abcdef", "--txn 'M-2-0123456789abcdef': a transaction of M-1"),
        ("M 1", "M-1-0123456789abcdef", "--machine 'M 1': 1-64 letters"),
    ):
        refused = CliRunner().invoke(app, [*approve, "--machine", machine, "--txn", txn])
        assert refused.exit_code == 2 and reason in refused.output and "signature" not in refused.output


def test_a_school_database_the_disk_cannot_hold_is_named_and_the_next_import_works(tmp_path: Path) -> None:
    """A full disk while the tables are made (a file size limit of 8 KiB): exit 70 and a traceback before."""
    (tmp_path / "roster.csv").write_text(ROSTER)
    db = tmp_path / "school.db"
    command = ["backend", "school", "--db", str(db), "--roster", str(tmp_path / "roster.csv")]
    full = vending_on_a_full_disk(8192, *command)
    assert full.returncode == 2, full.stderr
    assert f"{db}: cannot set up the school's database: disk I/O error" in full.stderr
    imported = vending_on_a_full_disk(1 << 30, *command)  # room again
    assert imported.returncode == 0 and "2 student(s)" in imported.stdout, imported.stderr
