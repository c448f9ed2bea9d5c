"""Signed operator refunds: the vendor credits a completed sale once; above the limit the school co-signs.

Through a real broker (the embedded one and Mosquitto with the generated ACL): every refusal is answered
with its reason and changes nothing (money, stock); a genuine refund credits the card, lowers the
takings by as much, reaches the vendor as a ``credited`` sale and the issuer in the day's settlement.
configs/scenarios/operator-refund.yaml plays it in each payment mode (tests/simulator/scenarios).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from firmware.reporting.signed import canonical, sign_text
from simulator.scenarios.runner import ScenarioRunner
from tests.support.reporting import attached_runner, sell, signed_command
from tests.support.waiting import eventually

AMY = "04A1B2C3D4E5F6"


def last_sale(runner: ScenarioRunner) -> tuple[str, int]:
    row = runner.machine.db.conn.execute(
        "SELECT txn_id, price FROM vends WHERE status = 'completed' ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    return str(row[0]), int(row[1])


def approval(world: Any, runner: ScenarioRunner, txn: str, amount: int, signer: str = "school") -> dict[str, str]:
    body = {"approve": "refund", "machine": runner.machine.controller.config.id, "txn": txn, "amount": amount}
    return json.loads(sign_text(getattr(world.keys, signer), canonical(body)))


def money(runner: ScenarioRunner) -> tuple[int, int, int]:
    books = runner.machine.books
    return books.wallet.balance(AMY).amount, books.vends.takings(), runner.machine.invariant_total()


def with_limit(runner: ScenarioRunner, limit: int) -> None:
    """The machine's refund_school_above, as its config would set it."""
    controller = runner.machine.controller
    security = controller.config.security.model_copy(update={"refund_school_above": limit})
    controller.config = controller.config.model_copy(update={"security": security})
    controller.setup = replace(controller.setup, config=controller.config)


def test_refusals_name_the_reason_and_change_nothing_and_a_genuine_refund_credits_once(world, tmp_path):
    with attached_runner(world, tmp_path) as runner:
        sell(runner, "A1", "amy")
        txn, price = last_sale(runner)
        with_limit(runner, 20)
        before = money(runner)
        cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
            ({"txn": "TPE-DAAN-JH-01-00000000deadbeef", "amount": 5}, {}, "no sale of this machine"),
            ({"txn": txn, "amount": price + 1, "approval": approval(world, runner, txn, price + 1)}, {},
             "more than the sale's price"),
            ({"txn": txn, "amount": price}, {}, "needs the school's approval"),
            ({"txn": txn, "amount": price, "approval": approval(world, runner, txn, price, "vendor")}, {},
             "who has no say here"),
            ({"txn": txn, "amount": price, "approval": approval(world, runner, txn, price - 1)}, {},
             "the school approved another refund"),
            ({"txn": txn, "amount": 5}, {"signer": "school"}, "who has no say here"),
            ({"txn": "nonsense", "amount": 5}, {}, "txn"),
        ]  # fmt: skip
        for body, how, reason in cases:
            answer = world.commands.handle("refund", signed_command(world, runner, "refund", body, **how))
            assert answer is not None and answer["ok"] is False and reason in answer["reason"], (body, answer)
            assert money(runner) == before, body

        genuine = {"txn": txn, "amount": price, "approval": approval(world, runner, txn, price)}
        answer = world.commands.handle("refund", signed_command(world, runner, "refund", genuine))
        assert answer is not None and answer["ok"], answer
        balance, takings, total = money(runner)
        assert (balance, takings, total) == (before[0] + price, before[1] - price, before[2]), "money moved, none made"
        again = world.commands.handle("refund", signed_command(world, runner, "refund", {"txn": txn, "amount": 5}))
        assert again is not None and "already refunded NT$25" in again["reason"]
        assert money(runner) == (balance, takings, total)

        # the vendor's books hear a credited sale; the day's settlement tells the issuer what was refunded
        runner.machine.controller.close_day(runner.clock.now().astimezone(runner.machine.controller.config.zone)
                                            .date().isoformat())  # fmt: skip
        assert world.publisher is not None and world.publisher.flush(15)
        vendor, issuer = world.vendor, world.issuer
        assert vendor is not None and issuer is not None

        def credited() -> list[Any]:
            return vendor.store.execute("SELECT txn, price FROM sales WHERE outcome = 'credited'")

        assert eventually(credited, what="the credited sale at the vendor") == [(txn, price)]
        refunded = issuer.store.execute("SELECT refunded FROM settlement_days")
        assert refunded == [(price,)]


@pytest.mark.parametrize("limit", [100])
def test_cmd_send_refund_takes_amount_as_the_issue_spells_it(limit):
    from firmware.app.command_set import fields_from_words

    assert fields_from_words("refund", ["TPE-X-0123456789abcdef", "--amount", "25"]) == {
        "txn": "TPE-X-0123456789abcdef",
        "amount": 25,
    }
    with pytest.raises(ValueError, match="usage: refund TXN --amount N"):
        fields_from_words("refund", ["TPE-X-0123456789abcdef"])
