"""Insufficient funds is refused before anything moves."""

from __future__ import annotations

from firmware.domain import Denial, SaleRequest
from firmware.messages import Message


class FundsPolicy:
    def evaluate(self, request: SaleRequest) -> Denial | None:
        if request.account.balance.covers(request.price):
            return None
        limit = request.account.offline_limit
        if limit is not None:  # an account while its issuer is unreachable: the balance is the offline allowance
            details = {"limit": limit, "spent": limit - request.account.balance.amount}
            return Denial("offline_limit", Message("denied.offline_limit", details), details)
        return Denial(
            "insufficient_funds",
            Message(
                "denied.insufficient_funds", {"price": request.price.amount, "balance": request.account.balance.amount}
            ),
            {"price": request.price.amount, "balance": request.account.balance.amount},
        )
