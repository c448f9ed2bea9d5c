"""An erasure is whole or fails loudly: "nothing found" is never the answer to "nobody was asked"."""

from __future__ import annotations

from datetime import date

import pytest

from firmware.errors import VendingError
from firmware.identity.keys import write_key
from simulator.school.roster import Student
from simulator.school.subject import SubjectRequests, TermKeys


def test_a_shared_key_and_no_machine_named_fails_instead_of_asking_nobody(tmp_path):
    write_key(tmp_path, "2026-1", date(2099, 1, 31))  # the README's layout: one key for every machine
    asking = SubjectRequests(client=None, keys=TermKeys(tmp_path, "2026-1"), machines=[])
    with pytest.raises(VendingError, match="no machine to ask: .* --machine ID"):
        asking.gather("erase", Student("s-1", "04A1B2C3"))


def test_the_machines_read_are_the_school_s_whoever_asks(tmp_path):
    write_key(tmp_path / "TPE-A", "2026-1", date(2099, 1, 31))  # a key of its own: read for every request
    asking = SubjectRequests(client=None, keys=TermKeys(tmp_path, "2026-1"), machines=["TPE-C", "TPE-B"])
    assert asking.machines == ["TPE-A", "TPE-B", "TPE-C"]
