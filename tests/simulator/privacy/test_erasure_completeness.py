"""Issue 29: an erasure is whole or fails loudly; "nothing found" is never the answer to "nobody was asked"."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from firmware.errors import VendingError
from firmware.identity.keys import write_key
from simulator.school.roster import Student
from simulator.school.subject import SubjectRequests, TermKeys

DAY = date(2026, 3, 3)


def requests(tmp_path) -> SubjectRequests:
    write_key(tmp_path, "2026-1", date(2099, 1, 31))  # the README's layout: one key for every machine
    return SubjectRequests(client=None, keys=TermKeys(tmp_path, "2026-1"), seal_public=b"", zone=ZoneInfo("UTC"))  # type: ignore[arg-type]


def test_a_shared_key_and_a_day_without_settlement_fails_naming_the_day_instead_of_asking_nobody(tmp_path):
    with pytest.raises(VendingError, match="no machine to ask about 2026-03-03: .* --machine ID"):
        requests(tmp_path).machine_days({"days": [], "weeks": []}, [DAY], Student("s-1", "04A1B2C3"))


def test_nothing_to_ask_at_all_is_an_error_not_an_empty_receipt(tmp_path):
    with pytest.raises(VendingError, match="nothing to ask: no settlement names the card"):
        requests(tmp_path).machine_days({"days": [], "weeks": []}, [], Student("s-1", "04A1B2C3"))


def test_the_roster_s_machine_and_given_machines_are_asked_about_every_named_day(tmp_path):
    asking = requests(tmp_path)
    on_roster = Student("s-1", "04A1B2C3", machine="TPE-A")
    assert asking.machine_days({"days": [], "weeks": []}, [DAY], on_roster) == [("TPE-A", "2026-03-03")]
    named = asking.machine_days({"days": [], "weeks": []}, [DAY], Student("s-2", "04A1B2C4"), ["TPE-B", "TPE-C"])
    assert named == [("TPE-B", "2026-03-03"), ("TPE-C", "2026-03-03")]
    settled = asking.machine_days({"days": [{"machine": "TPE-D", "day": "2026-03-02"}], "weeks": []}, [DAY])
    assert settled == [("TPE-D", "2026-03-02"), ("TPE-D", "2026-03-03")]
