"""A card on the issuer's lost-card list is refused; so is any card when the list is out of date, if so configured."""

from __future__ import annotations

from firmware.domain import Denial, SaleRequest
from firmware.messages import Message
from firmware.ports import Hotlist


class HotlistPolicy:
    def __init__(self, hotlist: Hotlist) -> None:
        self.hotlist = hotlist

    def evaluate(self, request: SaleRequest) -> Denial | None:
        verdict = self.hotlist.verdict(request.account.uid, request.local_time)
        if verdict == "blocked":
            return Denial("card_blocked", Message("denied.card_blocked"))
        if verdict == "unchecked":
            return Denial("hotlist_stale", Message("denied.hotlist_stale"))
        return None
