"""The fleet: deterministic plans, the same outcome whatever the process count, and nothing lost."""

from __future__ import annotations

from datetime import date

from firmware.config.catalog import load_catalog
from simulator.fleet.model import WINDOWS, plan_machine, stockable
from simulator.fleet.runner import CATALOG, run_fleet
from simulator.scenarios.reporting_world import ReportingWorld
from tests.support.commands import LONG_RUN
from tests.support.waiting import eventually

DAY = date(2026, 3, 2)
PRODUCTS = stockable(load_catalog(CATALOG))


def test_same_seed_same_plan_and_another_seed_another():
    first, again = plan_machine(3, DAY, 200, 7, PRODUCTS), plan_machine(3, DAY, 200, 7, PRODUCTS)
    assert first == again
    assert plan_machine(3, DAY, 200, 8, PRODUCTS).visits != first.visits
    assert first.visits == sorted(first.visits, key=lambda v: (v.at, v.uid))


def test_fleet_machines_carry_their_level_s_food_rules_and_stock_only_what_they_allow(tmp_path):
    """Every generated machine would pass `vending check --strict`, and the rules also hold at the till."""
    import yaml

    from firmware.config.machine import load_machine
    from simulator.cli.rules import refused_slots
    from simulator.fleet.model import FLEET_RULES

    levels = set()
    for index in range(12):
        plan = plan_machine(index, DAY, 10, 1, PRODUCTS)
        assert plan.config["rules"] == list(FLEET_RULES)
        products = {slot["product"] for slot in plan.config["slots"].values()}
        assert "tea-green-sweetened-300" not in products
        levels.add(plan.config["school"]["level"])
        path = tmp_path / f"{plan.machine_id}.yaml"
        path.write_text(yaml.safe_dump({**plan.config, "catalog": str(CATALOG)}))
        assert refused_slots(load_machine(path)) == []
    assert levels == {"elementary", "junior_high", "senior_high"}
    # loaded by mistake, the refused tea does not sell on a fleet machine
    plan = plan_machine(0, DAY, 10, 1, PRODUCTS)
    plan.config["slots"]["A1"]["product"] = "tea-green-sweetened-300"
    path.write_text(yaml.safe_dump({**plan.config, "catalog": str(CATALOG)}))
    assert refused_slots(load_machine(path)) and "A1" in refused_slots(load_machine(path))[0]


def test_a_fleet_day_refuses_a_product_the_rules_refuse(tmp_path):
    from dataclasses import replace

    from simulator.dev_keys import DevKeys
    from simulator.fleet.worker import simulate_day

    plan = plan_machine(0, DAY, 200, 1, PRODUCTS)
    slot = plan.visits[0].slot
    plan.config["slots"][slot]["product"] = "tea-green-sweetened-300"
    plan = replace(plan, visits=[replace(visit, slot=slot, walks_away=False) for visit in plan.visits[:20]])
    stats = simulate_day(plan, load_catalog(CATALOG), tmp_path / "m", DevKeys(tmp_path / "keys"))
    assert stats.denials.get("not_compliant", 0) > 0 and stats.sales == 0


def test_students_arrive_in_the_school_day_windows():
    plan = plan_machine(0, DAY, 600, 1, PRODUCTS)
    students = {c.uid for c in plan.cards if c.profile == "student"}
    times = [v.at.timetz().replace(tzinfo=None) for v in plan.visits if v.uid in students]
    assert times and all(any(start <= t <= end for _, start, end, _ in WINDOWS) for t in times)


def test_fleet_outcome_is_independent_of_processes_and_delivers_everything(tmp_path, closing):
    outcomes = []
    for processes in (1, 2):
        world = closing(ReportingWorld(tmp_path / f"world-{processes}").start())
        result = run_fleet(3, DAY, 120, 5, world.broker_access(), processes, world.keys.directory)
        vendor, issuer = world.vendor, world.issuer
        eventually(lambda: vendor.store.count() >= result.reports, what="vendor backend caught up")  # noqa: B023
        eventually(lambda: issuer.store.count() >= result.settlements, what="issuer caught up")  # noqa: B023
        assert world.vendor.store.count() == result.reports
        assert world.issuer.store.count() == result.settlements == 3
        sales = world.vendor.store.execute(
            "SELECT COUNT(*), COUNT(DISTINCT machine || txn) FROM sales WHERE outcome = 'vended'"
        )[0]
        assert sales == (result.sales, result.sales)
        outcomes.append(result.outcome())
    assert result.sales > 0 and result.denials
    assert outcomes[0] == outcomes[1]


@LONG_RUN
def test_a_term_keeps_its_students_keys_and_sequence_numbers_and_every_party_s_data(tmp_path) -> None:
    """`vending fleet --days 3 --out DIR`: three school days of the same machines, nothing lost, all kept."""
    import csv
    import json
    import sqlite3
    import stat
    import subprocess

    from tests.conftest import VENDING
    from tests.support.commands import run_vending

    out = tmp_path / "term"
    run = run_vending(
        ["fleet", "--machines", "2", "--students", "60", "--days", "3"]
        + ["--day", "2026-03-06", "--out", str(out), "--processes", "1", "--json"]  # Friday: Fri, Mon, Tue
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["days"] == 3 and figures["settlements"] == figures["settlements_delivered"] == 6
    assert figures["reports"] == figures["delivered"] > 0, "every report stored exactly once"
    assert figures["broker"].startswith("mosquitto"), "auto: Mosquitto when installed (make test installs it)"

    with sqlite3.connect(out / "issuer.db") as issuer:
        days = {day for (day,) in issuer.execute("SELECT DISTINCT day FROM settlement_days")}
    assert days == {"2026-03-06", "2026-03-09", "2026-03-10"}, "Mon-Fri only"
    with sqlite3.connect(out / "vendor.db") as vendor:
        seqs = vendor.execute("SELECT machine, MIN(seq), MAX(seq), COUNT(*) FROM reports GROUP BY machine").fetchall()
    assert all(low == 1 and high == count for _, low, high, count in seqs), "each machine's seq runs on across days"

    roster = list(csv.DictReader((out / "school" / "roster.csv").open()))
    assert stat.S_IMODE((out / "school" / "roster.csv").stat().st_mode) == 0o600
    with sqlite3.connect(out / "school" / "school.db") as school:  # the school's party database, kept too
        assert school.execute("SELECT COUNT(*) FROM students").fetchone()[0] == len(roster)
    imported = subprocess.run(
        [VENDING, "backend", "school", "--db", str(out / "school" / "school.db")]
        + ["--roster", str(out / "school" / "roster.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"{len(roster)} student(s)" in imported.stdout, imported.stderr  # the school imports what it keeps
    machines = {row["machine"] for row in roster}
    assert len(machines) == 2 and sum(row["profile"] == "student" for row in roster) == 120
    for machine in machines:
        with sqlite3.connect(out / "machines" / machine / "machine.db") as db:
            known = {uid for (uid,) in db.execute("SELECT uid FROM cards")}
        school_cards = {row["card_uid"] for row in roster if row["machine"] == machine}
        assert school_cards <= known, "the machine knows the school's cards: the same students every day"
        assert (out / "keys" / "school" / "terms" / machine / "term_key.json").exists(), "the school's term key"


def test_purse_cards_travel_between_a_school_s_machines_and_weekly_top_ups_keep_a_term_from_running_dry(
    tmp_path, closing
):
    """Two schools of two machines, six school days (Monday to Monday) with every student's money on the card."""
    from firmware.cards.purse import Sam, machine_tag
    from firmware.identity.keyset import read_card_master
    from simulator.dev_keys import DevKeys
    from simulator.fleet.model import school_days
    from simulator.fleet.runner import FleetResult
    from simulator.fleet.worker import school_cards_file
    from simulator.scenarios.purses import PurseCards

    world = closing(ReportingWorld(tmp_path / "world").start())
    term = FleetResult()
    days = school_days(6, DAY)
    for day in days:
        today = run_fleet(
            4, day, 40, 3, world.broker_access(), 2, world.keys.directory, term_start=DAY,
            keep=tmp_path / "machines", payment="card", per_school=2,
        )  # fmt: skip
        term.absorb(today)
        assert today.top_ups == 0 or day.weekday() == 0, "top-ups happen on Mondays"
    assert term.top_ups > 0 and days[-1].weekday() == 0
    vendor = world.vendor
    eventually(lambda: vendor.store.count() >= term.reports, what="vendor backend caught up")
    assert vendor.store.count() == term.reports
    sam = Sam(read_card_master(world.keys.directory))
    keys = DevKeys(world.keys.directory)
    started = travelled = ended = 0
    for school in (0, 1):
        plan = plan_machine(2 * school, DAY, 40, 3, PRODUCTS, "card", per_school=2)
        started += sum(card.balance for card in plan.cards)
        purses = PurseCards(sam, "", DAY)
        assert purses.load(school_cards_file(keys, school))
        ended += sum(purses.balance(uid) for uid in purses.cards)
        tags = {machine_tag(f"TPE-FLEET-{index:04d}") for index in (2 * school, 2 * school + 1)}
        for uid in purses.cards:
            seen = {entry.machine for entry in purses.recovered(uid).log}
            travelled += tags <= seen
    assert travelled > 0, "some card was debited at both of its school's machines"
    assert started + term.top_ups == ended + term.revenue, "every NT$ is on a card or in a machine's takings"


def test_an_account_fleet_asks_the_issuer_at_each_tap_and_every_nt_dollar_is_accounted_for(tmp_path, closing):
    """Two schools of two machines on accounts at the issuer (payment: account), two days: online all day."""
    from simulator.fleet.model import school_days
    from simulator.fleet.runner import FleetResult, open_accounts

    world = closing(ReportingWorld(tmp_path / "world").start())
    assert world.issuer is not None
    started = open_accounts(world.issuer.accounts, world.keys.issuer, 4, DAY, 30, 3, per_school=2)
    term = FleetResult()
    for day in school_days(2, DAY):
        term.absorb(run_fleet(
            4, day, 30, 3, world.broker_access(), 2, world.keys.directory, term_start=DAY,
            keep=tmp_path / "machines", payment="account", per_school=2,
        ))  # fmt: skip
    assert term.revenue > 0 and term.settlements > term.sales, "an outcome to the issuer for every debit"
    issuer = world.issuer
    eventually(lambda: issuer.store.count() >= term.settlements, what="issuer backend caught up")
    assert issuer.store.count() == term.settlements
    assert issuer.authorisations >= 2 * term.sales, "an inquiry and an authorisation for each sale"
    book = issuer.accounts
    declined = sum(amount for _, _, amount in book.declined_debts())
    assert book.total() + term.revenue - declined == started, "every NT$ is in an account or a machine's takings"
    debits = book.store.execute("SELECT how, COUNT(*) FROM account_debits WHERE state = 'debited' GROUP BY how")
    assert dict(debits).get("online", 0) > 0 and "offline" not in dict(debits), debits


def test_a_fleet_that_lost_reports_names_the_machines_still_holding_them_across_days():
    """The answer "no" says where to look: the outboxes that kept rows past their drain, summed over days."""
    from simulator.cli.fleet import _where_lost
    from simulator.fleet.runner import FleetResult
    from simulator.fleet.worker import MachineStats

    term = FleetResult()
    for stranded in ({"TPE-FLEET-0012": 54}, {"TPE-FLEET-0012": 3, "TPE-FLEET-0003": 1}):
        day = FleetResult()
        day.add_machine(MachineStats(machine="TPE-FLEET-0000", reports=9))  # drained: not named
        for machine, rows in stranded.items():
            day.add_machine(MachineStats(machine=machine, reports=rows, undelivered=rows))
        term.absorb(day)
    assert term.stranded == {"TPE-FLEET-0012": 57, "TPE-FLEET-0003": 1}
    said = _where_lost(term, 58)
    assert said.startswith("58 report(s) produced but not stored")
    assert said.endswith("TPE-FLEET-0003 (1), TPE-FLEET-0012 (57)") and "TPE-FLEET-0000" not in said
    assert "every outbox was acknowledged empty" in _where_lost(FleetResult(), 2)
