"""``vending school controls set|periods|publish|show``: guardians' decisions, pushed sealed to the machines."""

from __future__ import annotations

import json
from pathlib import Path

from firmware.identity.keyset import CONTROLS, read_shared_key
from firmware.identity.pseudonym import controls_name
from firmware.identity.signing import PublicKey, TrustStore
from firmware.reporting import controls
from simulator.servers.broker import EmbeddedBroker
from tests.simulator.cli.test_cli import vending

AMY = "04A1B2C3"


def school(tmp_path: Path) -> tuple[Path, str]:
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student,card_uid,daily_limit\namy,{AMY},100\nben,04B2C3D4,\n")
    db = str(tmp_path / "school.db")
    assert vending("backend", "school", "--db", db, "--roster", str(roster)).returncode == 0
    return tmp_path / "k", db


def test_a_decision_is_recorded_pushed_sealed_and_opened_by_a_machine(tmp_path: Path):
    from datetime import UTC, datetime

    import paho.mqtt.subscribe as subscribe

    keys, db = school(tmp_path)
    with EmbeddedBroker() as broker:
        common = ["--db", db, "--keys", str(keys), "--broker", broker.url, "--school", "353301"]
        periods = vending("school", "controls", "periods", "--period", "lunch=12:00-13:30", *common)
        assert periods.returncode == 0 and "controls version 1: 1 period(s)" in periods.stdout, periods.stderr
        decided = vending("school", "controls", "set", "--student", "amy", "--period-limit", "lunch=60",
                          "--block-allergen", "peanut", "--block-allergen", "peanut",  # given twice: kept once
                          "--daily-limit", "80", *common)  # fmt: skip
        assert decided.returncode == 0 and "controls version 2: amy recorded" in decided.stdout, decided.stderr
        retained = subscribe.simple(controls.topic("353301"), hostname="127.0.0.1", port=broker.port, retained=True)
    assert AMY.encode() not in retained.payload and b"peanut" not in retained.payload
    key = read_shared_key(keys, CONTROLS)
    assert key is not None
    trusted = TrustStore([PublicKey.load("school", keys / "school.pub")])
    document = controls.read(retained.payload, key, trusted.verify, 0, datetime.now(UTC))
    guardian = document.cards[controls_name(key, AMY)]
    assert document.version == 2 and [p.name for p in document.periods] == ["lunch"]
    assert guardian.linked and guardian.daily_limit == 80 and guardian.period_limits == (("lunch", 60),)
    assert guardian.blocked_allergens == ("peanut",) and len(document.cards) == 1, "only amy's decision on record"
    shown = json.loads(vending("school", "controls", "show", "--db", db, "--json").stdout)
    assert shown["students"]["amy"]["daily_limit"] == 80 and shown["version"] == 2
    assert shown["students"]["amy"]["blocked_allergens"] == ["peanut"]


def test_bad_decisions_are_named_and_change_nothing(tmp_path: Path):
    keys, db = school(tmp_path)
    common = ["--db", db, "--keys", str(keys), "--broker", "mqtt://127.0.0.1:9", "--school", "353301"]
    cases = [
        (["--student", "amy", "--block-allergen", "walnut"], "blocked_allergens.0"),
        (["--student", "amy", "--period-limit", "tea=5"], "'tea' is not one of the school's periods"),
        (["--student", "amy", "--period-limit", "lunch"], "expected PERIOD=TWD"),
        (
            ["--student", "amy", "--period-limit", "lunch=5", "--period-limit", "lunch=60"],  # the last one won
            "--period-limit: 'lunch' is given twice, as 5 and 60; nothing recorded",
        ),  # fmt: skip
        (["--student", "amy", "--daily-limit", "-3"], "--daily-limit '-3': expected whole TWD or `none`"),
        (["--student", "zoe", "--linked"], "'zoe' is not on the school's roster"),
    ]
    for options, message in cases:
        refused = vending("school", "controls", "set", *options, *common)
        assert refused.returncode == 2 and message in refused.stderr, (options, refused.stderr)
    overlapping = vending("school", "controls", "periods", "--period", "a=10:00-11:00", "--period", "b=10:30-12:00",
                          *common)  # fmt: skip
    assert overlapping.returncode == 2 and "periods a and b overlap" in overlapping.stderr
    twice = vending("school", "controls", "periods", "--period", "a=10:00-11:00", "--period", "a=12:00-13:00", *common)
    assert twice.returncode == 2 and "--period: 'a' is given twice; nothing recorded" in twice.stderr, twice.stderr
    shown = json.loads(vending("school", "controls", "show", "--db", db, "--json").stdout)
    assert shown["version"] == 0 and shown["students"] == {}, "nothing was recorded"


def test_a_decision_under_another_school_s_keys_is_refused_before_it_is_recorded_or_pushed(tmp_path: Path):
    """Every machine would refuse that push: the limit would not hold while the school's records said it did."""
    keys, db = school(tmp_path)
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "other")).returncode == 0
    with EmbeddedBroker() as broker:
        common = ["--db", db, "--broker", broker.url, "--school", "353301"]
        ours = vending("school", "controls", "set", "--student", "amy", "--daily-limit", "80", "--keys", str(keys),
                       *common)  # fmt: skip
        assert ours.returncode == 0, ours.stderr
        for command in (["set", "--student", "ben", "--daily-limit", "10"], ["periods", "--period", "x=09:00-10:00"],
                        ["publish"]):  # fmt: skip
            theirs = vending("school", "controls", *command, "--keys", str(tmp_path / "other"), *common)
            assert theirs.returncode == 2, (command, theirs.stderr)
            assert "--keys: key" in theirs.stderr and "is not the school's key this database keeps" in theirs.stderr
    shown = json.loads(vending("school", "controls", "show", "--db", db, "--json").stdout)
    assert shown["version"] == 1 and list(shown["students"]) == ["amy"], "only the school's own decision is on record"
    assert "x" not in shown["periods"]


def test_a_push_to_another_school_code_than_the_first_one_is_refused_before_anything_is_recorded(tmp_path: Path):
    """A mistyped --school pushed the guardians' decisions to a topic none of the school's machines reads."""
    keys, db = school(tmp_path)
    with EmbeddedBroker() as broker:
        common = ["--db", db, "--keys", str(keys), "--broker", broker.url]
        assert vending("school", "controls", "publish", *common, "--school", "353301").returncode == 0
        for code, reason in (
            ("353310", "--school 353310: this school's controls go to school 353301 (its pushes so far)"),
            ("35/#", "--school '35/#': a school code is 1-6 letters or digits"),
        ):
            typo = vending("school", "controls", "set", "--student", "amy", "--daily-limit", "5", *common,
                           "--school", code)  # fmt: skip
            assert typo.returncode == 2 and reason in typo.stderr, typo.stderr
        shown = json.loads(vending("school", "controls", "show", "--db", db, "--json").stdout)
        assert "amy" not in shown["students"] and shown["version"] == 1, "nothing recorded"
        assert vending("school", "controls", "set", "--student", "amy", "--daily-limit", "5", *common,
                       "--school", "353301").returncode == 0  # fmt: skip


def test_the_roster_moving_on_is_a_new_version_and_a_student_who_left_takes_their_decision_along(tmp_path: Path):
    """Every push failed on a student who had left ("not on the school's roster"), for every student."""
    from datetime import UTC, datetime

    import paho.mqtt.subscribe as subscribe

    keys, db = school(tmp_path)
    key = read_shared_key(keys, CONTROLS)
    assert key is not None
    trusted = TrustStore([PublicKey.load("school", keys / "school.pub")])
    roster = tmp_path / "roster.csv"

    def pushed(broker: EmbeddedBroker) -> controls.ControlsDocument:
        retained = subscribe.simple(controls.topic("353301"), hostname="127.0.0.1", port=broker.port, retained=True)
        return controls.read(retained.payload, key, trusted.verify, 0, datetime.now(UTC))

    with EmbeddedBroker() as broker:
        common = ["--db", db, "--keys", str(keys), "--broker", broker.url, "--school", "353301"]
        for student, limit in (("amy", "40"), ("ben", "30")):
            assert vending("school", "controls", "set", "--student", student, "--daily-limit", limit,
                           *common).returncode == 0  # fmt: skip
        before = pushed(broker)
        roster.write_text("student,card_uid\nben,04B2C3D4\n")  # amy left
        assert vending("backend", "school", "--db", db, "--roster", str(roster)).returncode == 0
        published = vending("school", "controls", "publish", *common)
        assert published.returncode == 0, published.stderr
        after = pushed(broker)
        assert after.version > before.version and list(after.cards) == [controls_name(key, "04B2C3D4")]
        roster.write_text("student,card_uid\nben,04B2C3D5\n")  # ben's card replaced: same decision, new card
        assert vending("backend", "school", "--db", db, "--roster", str(roster)).returncode == 0
        assert vending("school", "controls", "publish", *common).returncode == 0
        newest = pushed(broker)
        assert newest.version > after.version and list(newest.cards) == [controls_name(key, "04B2C3D5")]
        assert vending("school", "controls", "publish", *common).returncode == 0
        assert pushed(broker).version == newest.version, "nothing changed: the same version again"
    shown = json.loads(vending("school", "controls", "show", "--db", db, "--json").stdout)
    assert list(shown["students"]) == ["ben"]
