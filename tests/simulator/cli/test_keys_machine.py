"""``vending keys machine``: a machine's key, and its enrolment at the backends under its id, never anyone else's.

The id was not checked: ``--machine ../x`` wrote ``x.pub`` beside the enrolment directory, not in it, and a
newline went into the file's name. An id enrolled already was replaced without ``--force``: the machine that
held it could no longer report (the backends refuse its signatures). A symlink in its place was written through.
"""

from __future__ import annotations

from pathlib import Path

from firmware.identity.signing import PublicKey
from tests.simulator.cli.test_cli import vending


def enrol(tmp_path: Path, machine: str, state: str, *extra: str):
    (tmp_path / "enrolled").mkdir(exist_ok=True)  # the backends' --machines DIR
    return vending("keys", "machine", "--machine", machine, "--state-dir", str(tmp_path / state),
                   "--enrol", str(tmp_path / "enrolled"), *extra)  # fmt: skip


def test_a_machine_is_enrolled_once_under_its_own_id(tmp_path: Path) -> None:
    first = enrol(tmp_path, "TPE-1", "first")
    assert first.returncode == 0, first.stderr
    enrolled = tmp_path / "enrolled" / "TPE-1.pub"
    before = enrolled.read_bytes()
    assert PublicKey.load("machine:TPE-1", enrolled).kid  # the enrolment is the key the state dir holds

    again = enrol(tmp_path, "TPE-1", "second")
    assert again.returncode == 2 and "enrols machine TPE-1 already; --force re-enrols it" in again.stderr
    assert enrolled.read_bytes() == before and not (tmp_path / "second").exists()

    forced = enrol(tmp_path, "TPE-1", "second", "--force")
    assert forced.returncode == 0 and enrolled.read_bytes() != before


def test_an_id_that_is_not_one_or_a_symlink_in_its_place_is_refused_before_a_key_is_made(tmp_path: Path) -> None:
    for machine in ("../escaped", "TPE-1\n", ""):
        out = enrol(tmp_path, machine, "state")
        assert out.returncode == 2 and f"--machine: {machine!r}: a machine id is 1-64 letters" in out.stderr, out.stderr
    for party in ("vendor", "school-ops", "insider"):  # enrolled, then refused by the broker's certificate setup
        out = enrol(tmp_path, party, "state")
        assert out.returncode == 2 and f"--machine: {party!r}: that is a party's broker user" in out.stderr, out.stderr
    (tmp_path / "enrolled" / "TPE-2.pub").symlink_to(tmp_path / "elsewhere.pub")
    linked = enrol(tmp_path, "TPE-2", "state", "--force")
    assert linked.returncode == 2 and "is a symlink; nothing is written through one" in linked.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enrolled"], "no key, no file outside, nothing through"


def test_an_enrolment_directory_that_is_not_there_is_named_not_made(tmp_path: Path) -> None:
    """A typo made a directory no backend reads: the key was "enrolled", and the machine's reports refused."""
    typo = tmp_path / "enroled"
    out = vending("keys", "machine", "--machine", "TPE-1", "--state-dir", str(tmp_path / "state"), "--enrol", str(typo))
    assert out.returncode == 2
    assert f"--enrol {typo}: no such directory; it is the backends' enrolment directory" in out.stderr
    assert list(tmp_path.iterdir()) == [], "no key made, no directory made"
