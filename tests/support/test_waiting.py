"""The waiting helpers: a failure says where things stood when the wait ran out."""

from __future__ import annotations

import pytest

from tests.support.waiting import eventually


def test_a_message_given_as_a_function_is_asked_when_the_wait_fails() -> None:
    counted = [0]

    def probe() -> bool:
        counted[0] += 1
        return False

    with pytest.raises(AssertionError, match=r"^every message refused \(counted [1-9]\d*\) did not happen"):
        eventually(probe, timeout=0.05, what=lambda: f"every message refused (counted {counted[0]})")


def test_a_wait_that_succeeds_returns_what_the_probe_found() -> None:
    assert eventually(lambda: 7, timeout=0.05, what=lambda: pytest.fail("asked without a failure")) == 7
