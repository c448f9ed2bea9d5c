"""What the board reads from the vendor's store: times in the machine's zone, refusals by reason, money per machine."""

from __future__ import annotations

from simulator.dashboard.board import _in_zone_of, read_board
from simulator.dashboard.operator import Operator
from tests.support.reporting import attached_runner, sell, world  # noqa: F401 - fixture
from tests.support.waiting import eventually


def test_a_heartbeat_stamped_in_utc_reads_in_the_machine_s_zone():
    assert _in_zone_of("2026-03-01T23:30:05+00:00", "2026-03-02T07:30+08:00") == "2026-03-02T07:30:05+08:00"
    assert _in_zone_of("2026-03-01T23:30:05+00:00", None) == "2026-03-01T23:30:05+00:00"  # no report yet: as stamped


def test_the_board_counts_refusals_by_reason_and_revenue_and_last_sale_per_machine(world, tmp_path):  # noqa: F811
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        sell(runner, "B3", "ben")  # refused by the food rules, with the card in the session
        runner.machine.controller.dispatch("cancel")
        assert world.publisher is not None and world.publisher.flush(20)
        board = read_board(world.vendor.store)
        machine = next(m for m in board.machines if m.machine == runner.machine.machine_id)
        assert board.denials_by_reason == {"not_compliant": 1} and board.denials == 1
        assert machine.revenue == 25 and machine.last_sale is not None and machine.last_sale.endswith("+08:00")
        b3 = next(s for s in board.slots if s.slot == "B3")
        assert not b3.sellable and b3.why_not == "refused by the food rules" and not b3.fillable
        assert dict(board.slots_by_machine())[machine.machine][0].slot == "A1"


def test_an_operator_s_refund_comes_off_the_day_s_revenue_and_shows_as_refunded(world, tmp_path):  # noqa: F811
    """The vendor hears a refund as a `credited` sale of that txn; the board counted vended sales only."""
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        sell(runner, "A2", "amy")
        txn = runner.machine.books.journal.db.conn.execute("SELECT txn_id FROM vends ORDER BY rowid").fetchone()[0]
        vendor = world.vendor
        operator = Operator(vendor.identity, lambda topic, body: vendor.client.publish(topic, body, 1))
        operator.clock = runner.clock.now  # the operator's clock agrees with the machine's (virtual) one
        operator.send(runner.machine.machine_id, "refund", {"txn": txn, "amount": 25})

        def refunded() -> bool:
            runner.machine.tick()  # the runner applies commands on the controller's thread
            return runner.machine.books.vends.refunded(txn) == 25

        eventually(refunded, what="the machine applying the refund")
        assert world.publisher is not None and world.publisher.flush(20)
        board = read_board(world.vendor.store)
        machine = next(m for m in board.machines if m.machine == runner.machine.machine_id)
        assert (board.items, board.revenue, board.refunded) == (2, {"TWD": 20}, {"TWD": 25})
        assert machine.revenue == 20


def test_a_command_s_counter_stays_at_its_issue_time_whatever_was_sent_to_other_machines_before():
    """A later command to one machine (or from another key) never pushes another machine's counter ahead.

    The machine refuses a counter far ahead of its issue time; a process-wide "last counter" did
    exactly that to the second machine after a command stamped later went to the first.
    """
    from datetime import UTC, datetime

    from simulator.dashboard.operator import issue_counter

    late, early = datetime(2026, 3, 2, 9, 40, tzinfo=UTC), datetime(2026, 3, 1, 23, 41, tzinfo=UTC)
    assert issue_counter("key-a", "M-LATE", late) == int(late.timestamp() * 1_000_000)
    assert issue_counter("key-a", "M-EARLY", early) == int(early.timestamp() * 1_000_000)
    assert issue_counter("key-a", "M-EARLY", early) == int(early.timestamp() * 1_000_000) + 1, "still in order"


def test_a_jam_alert_stays_open_while_the_machine_keeps_its_slot_out_of_sale(world, tmp_path):  # noqa: F811
    with attached_runner(world, tmp_path) as runner:
        runner.dispenser.empty("A2")
        for _ in range(2):  # two vends in a row that do not drop: the machine takes A2 out of sale
            sell(runner, "A2", "lin")
        assert world.publisher is not None and world.publisher.flush(20)
        board = read_board(world.vendor.store)
        jams = [(a.kind, a.slot) for a in board.alerts if "out of sale" in a.detail]
        assert jams == [("jam", "A2")], "open though a later snapshot came: it shows A2 disabled"
        assert not next(s for s in board.slots if s.slot == "A2").enabled

        runner.machine.books.inventory.set_enabled("A2", True)  # mended and enabled: the next snapshot closes it
        runner.machine.controller.restock({"A2": 6})
        assert world.publisher.flush(20)
        assert not [a for a in read_board(world.vendor.store).alerts if a.kind == "jam"]
