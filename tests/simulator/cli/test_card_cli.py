"""``vending card issue|show|topup|keys``: an issuer's card images, checked and never overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.simulator.cli.test_cli import vending


def test_issue_show_topup_and_keys_round_trip(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    keys, card = str(tmp_path / "k"), str(tmp_path / "amy.mfd")
    issued = vending("card", "issue", "--uid", "04a1b2c3", "--purse", "500", "--keys", keys, "--out", card)
    assert issued.returncode == 0 and "issued card 04A1B2C3 (student" in issued.stdout
    assert Path(card).stat().st_size == 1024
    assert vending("card", "topup", card, "--keys", keys, "--amount", "200").returncode == 0
    shown = json.loads(vending("card", "show", card, "--keys", keys, "--json").stdout)
    assert (shown["uid"], shown["profile"], shown["purse"], shown["backup"]) == ("04A1B2C3", "student", 700, 500)
    written = vending("card", "keys", card, "--keys", keys, "--out", str(tmp_path / "keys.mfd"))
    assert written.returncode == 0 and stat.S_IMODE((tmp_path / "keys.mfd").stat().st_mode) == 0o600
    assert "card-master" not in written.stdout + written.stderr


def test_bad_cards_and_arguments_are_named_and_change_nothing(tmp_path: Path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "other")).returncode == 0
    keys, card = str(tmp_path / "k"), str(tmp_path / "amy.mfd")
    issued = vending("card", "issue", "--uid", "04A1B2C3", "--purse", "500", "--keys", keys, "--out", card)
    assert issued.returncode == 0
    another = ["card", "issue", "--uid", "04A1B2C4", "--keys", keys, "--out", str(tmp_path / "y.mfd")]
    before = Path(card).read_bytes()
    cases = [
        (["card", "issue", "--uid", "04A1B2C3", "--keys", keys, "--out", card], "exists; nothing written"),
        (["card", "issue", "--uid", "zz", "--keys", keys, "--out", str(tmp_path / "x.mfd")], "--uid 'zz': hex digits"),
        (
            ["card", "issue", "--uid", "04A1B2C3D4E5", "--keys", keys, "--out", str(tmp_path / "y.mfd")],
            "--uid: a MIFARE Classic 1K campus card has a 4- or 7-byte uid",
        ),
        (  # ISO/IEC 14443-3's cascade tag: no reader could read such a card's uid back as given
            ["card", "issue", "--uid", "88A1B2C3", "--keys", keys, "--out", str(tmp_path / "y.mfd")],
            "--uid: its first byte is 88, the cascade tag ISO/IEC 14443-3 keeps out of a uid there",
        ),
        (
            ["card", "issue", "--uid", "04A1B2881234AB", "--keys", keys, "--out", str(tmp_path / "y.mfd")],
            "--uid: its fourth byte is 88, the cascade tag ISO/IEC 14443-3 keeps out of a uid there",
        ),
        (  # each refusal names its own option; a school code the card's record cannot hold was exit 70
            [*another, "--school", "台北"],
            "--school: school code '台北': a school code is 1-6 letters or digits",
        ),
        (
            [*another, "--profile", "teacher"],
            "--profile: profile must be one of student, staff, not 'teacher'",
        ),
        (
            [*another, "--purse", "10001"],
            "--purse: a purse holds 0 to 10000, not 10001",
        ),
        (["card", "topup", card, "--keys", keys, "--amount", "0"], "--amount: a credit is a positive amount, not 0"),
        (  # logged on the card as a terminal
            ["card", "topup", card, "--keys", keys, "--amount", "5", "--terminal", ""],
            "--terminal '': a terminal's id is 1-64 letters, digits, '-' or '_', as a machine's",
        ),
        (  # refused before a card is waited for on the reader (it was waited for, then "the card refused" it)
            ["card", "topup", "--reader", "pn532:/nonexistent", "--keys", keys, "--amount", "-5"],
            "--amount: a credit is a positive amount, not -5",
        ),
        (["card", "show", card, "--keys", str(tmp_path / "other")], "MAC is not the issuer's"),
        (["card", "show", card, "--keys", str(tmp_path / "nowhere")], "no card master key"),
        (
            ["card", "topup", card, "--keys", keys, "--amount", "9600"],
            "--amount: a credit of NT$9600 would take the purse from NT$500 past its ceiling of NT$10000",
        ),
        (  # said before the card was read: it claimed the purse held NT$0
            ["card", "topup", card, "--keys", keys, "--amount", "10001"],
            "--amount: a credit of NT$10001 is more than any purse holds, NT$10000",
        ),
        (["card", "show", str(tmp_path / "missing.mfd"), "--keys", keys], "missing.mfd"),
        (
            ["card", "issue", "--uid", "04A1B2C3", "--keys", keys, "--out", str(tmp_path / "none" / "z.mfd")],
            f"--out {tmp_path / 'none' / 'z.mfd'}: {tmp_path / 'none'} is not a directory; nothing written",
        ),
        (["card", "keys", card, "--keys", keys, "--out", f"{card}/k.mfd"], f"{card} is not a directory"),
    ]
    for args, message in cases:
        out = vending(*args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert Path(card).read_bytes() == before
    assert not (tmp_path / "none").exists(), "a mistyped directory is named, not made"
    assert not (tmp_path / "y.mfd").exists()


def test_a_top_up_that_cannot_be_written_whole_leaves_the_card_image_as_it_was(tmp_path: Path):
    """The disk fills mid-write (a file size limit of 512 bytes): the image keeps its 1,024 bytes and its money."""
    from tests.conftest import vending_on_a_full_disk

    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    keys, card = str(tmp_path / "k"), tmp_path / "amy.mfd"
    assert (
        vending("card", "issue", "--uid", "04A1B2C3", "--purse", "500", "--keys", keys, "--out", str(card)).returncode
        == 0
    )
    before = card.read_bytes()
    out = vending_on_a_full_disk(512, "card", "topup", str(card), "--keys", keys, "--amount", "200")
    assert out.returncode == 2 and f"IMAGE {card}: cannot write: File too large; nothing written" in out.stderr
    assert card.read_bytes() == before, "the card image is whole, with the money it had"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["amy.mfd", "k"], "no temporary file left"
    assert vending("card", "topup", str(card), "--keys", keys, "--amount", "200").returncode == 0
    assert json.loads(vending("card", "show", str(card), "--keys", keys, "--json").stdout)["purse"] == 700


def test_a_top_up_through_an_emulated_reader_credits_the_card_and_logs_it(tmp_path: Path, closing):
    from typer.testing import CliRunner

    from simulator.cli import app
    from simulator.emulators.devices import PN532Device

    assert vending("keys", "dev-set", "--dir", str(tmp_path / "k")).returncode == 0
    keys, cards = str(tmp_path / "k"), tmp_path / "cards"
    cards.mkdir()
    card = str(cards / "04A1B2C3.mfd")
    assert (
        vending("card", "issue", "--uid", "04A1B2C3", "--purse", "500", "--keys", keys, "--out", card).returncode == 0
    )
    device = closing(PN532Device(tmp_path / "reader0", cards=cards).start())
    device.place("04A1B2C3")
    reader = f"pn532:{tmp_path / 'reader0'}"
    done = CliRunner().invoke(
        app, ["card", "topup", "--reader", reader, "--keys", keys, "--amount", "200", "--wait", "10"]
    )
    assert done.exit_code == 0 and "NT$500 + 200 = NT$700 (#1)" in done.output, done.output
    device.remove()  # the card leaves with what the terminal wrote
    shown = json.loads(vending("card", "show", card, "--keys", keys, "--json").stdout)
    assert shown["purse"] == 700 and shown["log"][0]["amount"] == -200
    both = CliRunner().invoke(app, ["card", "topup", card, "--reader", reader, "--keys", keys, "--amount", "1"])
    assert both.exit_code == 2 and "one of them" in both.output
