"""Errors that name the thing: the address, the argument, the key; never a Python exception's name."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.errors import VendingError
from firmware.readers.transport import SerialTransport
from simulator.servers.broker import EmbeddedBroker
from tests.conftest import CONFIGS, VENDING
from tests.simulator.cli.test_cli import vending


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def keys(tmp_path):
    assert vending("keys", "dev-set", "--dir", str(tmp_path / "keys")).returncode == 0
    return tmp_path / "keys"


def test_cmd_send_names_the_broker_it_cannot_reach(keys):
    port = dead_port()
    out = vending("cmd", "send", "restock", "A1=3", "--machine", "M-1", "--key", str(keys / "vendor.key"),
                  "--broker", f"mqtt://127.0.0.1:{port}")  # fmt: skip
    assert (
        out.returncode == 2 and f"cannot reach the broker at mqtt://127.0.0.1:{port}: connection refused" in out.stderr
    )


def test_cmd_send_names_the_argument_it_cannot_read(keys):
    out = vending("cmd", "send", "restock", "A1=abc", "--machine", "M-1", "--key", str(keys / "vendor.key"))
    assert out.returncode == 2
    assert "restock A1=abc: the count for A1 must be a whole number, got 'abc'; usage: restock SLOT=COUNT" in out.stderr
    assert "ValueError" not in out.stderr and "Traceback" not in out.stderr
    spaced = vending("cmd", "send", "restock", "A1=1_0", "--machine", "M-1", "--key", str(keys / "vendor.key"))
    assert spaced.returncode == 2 and "the count for A1 must be a whole number, got '1_0'" in spaced.stderr  # was 10
    twice = vending("cmd", "send", "restock", "A1=3", "A1=4", "--machine", "M-1", "--key", str(keys / "vendor.key"))
    assert twice.returncode == 2
    assert "restock A1=3 A1=4: slot 'A1' is given twice: which count is meant?" in twice.stderr


def test_cmd_send_refuses_what_the_machine_would_refuse_before_it_reaches_for_the_broker(keys, tmp_path):
    """Checked by the machine's own validation: the broker named here is dead, and is never tried."""
    dead = f"mqtt://127.0.0.1:{dead_port()}"
    for name, text, reason in (  # an empty list lifted the lunchtime lockout without a word
        ("empty.yaml", "lockouts: []\n", "lists no lockout; to lift every lockout, say so: set_lockout none"),
        ("blank.yaml", "", "holds nothing, not a list of lockouts"),
    ):
        (tmp_path / name).write_text(text)
        out = vending("cmd", "send", "set_lockout", str(tmp_path / name), "--machine", "M-1",
                      "--key", str(keys / "school.key"), "--broker", dead)  # fmt: skip
        assert out.returncode == 2 and reason in out.stderr and "cannot reach" not in out.stderr, out.stderr
    for words, reason in (
        (["restock", "A1=-1"], "restock A1=-1: slots.A1: Input should be greater than or equal to 0; nothing sent"),
        (["set_price", "A1", "0"], "set_price A1 0: price: Input should be greater than 0; nothing sent"),
        (["refund", "XYZ", "--amount", "5"], "refund XYZ --amount 5: txn: String should match pattern"),
        (  # another machine's sale: signed, sent, and only then refused by the machine as unknown
            ["refund", "M-2-0123456789abcdef", "--amount", "5"],
            "txn M-2-0123456789abcdef: a transaction of M-1 reads M-1-<16 hex digits>, not another machine's",
        ),
    ):
        out = vending("cmd", "send", *words, "--machine", "M-1", "--key", str(keys / "vendor.key"), "--broker", dead)
        assert out.returncode == 2 and reason in out.stderr and "cannot reach" not in out.stderr, out.stderr
    restock = ["cmd", "send", "restock", "A1=1", "--machine", "M-1", "--key", str(keys / "vendor.key")]
    restock += ["--broker", dead]
    for option, reason in (  # --wait nan waited forever, -1 was exit 70; a lifetime past a day was exit 70 or refused
        (["--wait", "nan"], "--wait: expected a number of seconds from 0, got nan"),
        (["--wait", "-1"], "--wait: expected a number of seconds from 0, got -1.0"),
        (["--lifetime", "0"], "Invalid value for '--lifetime'"),
        (["--lifetime", "99999999999999"], "Invalid value for '--lifetime'"),
    ):
        out = vending(*restock, *option)
        assert out.returncode == 2 and reason in out.stderr and "Traceback" not in out.stderr, out.stderr
    nameless = vending("cmd", "send", "restock", "A1=1", "--key", str(keys / "vendor.key"), "--broker", dead)
    assert nameless.returncode == 2 and "--machine '': the machine to command" in nameless.stderr, nameless.stderr


@pytest.mark.parametrize(
    "backend,options,reason",
    [
        ("vendor", ["--key", "issuer.key"], "issuer.key: the issuer's key (issuer.pub beside it is its public half), "
         "not the vendor's"),
        ("issuer", ["--key", "vendor.key"], "vendor.key: the vendor's key (vendor.pub beside it is its public half)"),
        ("vendor", ["--machines", "no-such-dir"], "--machines {keys}/no-such-dir: no such directory"),
        ("vendor", ["--db", "postgresql://nobody:secret-pw@127.0.0.1:{port}/x"],
         "--db: cannot connect to PostgreSQL: connection failed"),
        ("vendor", ["--db", "postgresql://nobody:secret-pw@[::1"],  # libpq cannot parse it: a traceback quoting it
         'in URI: "(the --db given)"'),
        ("issuer", ["--db", "postgresql://nobody:secret-pw@127.0.0.1/x"],  # a folder "postgresql:", a file "nobody:..."
         "--db postgresql://...: the issuer's database is an SQLite file; only the vendor keeps reports in PostgreSQL"),
        ("vendor", ["--db", "postgresql://nobody:secret-pw@127.0.0.1:{port}/x?sslmod=require"],
         'cannot connect to PostgreSQL: invalid URI query parameter: "sslmod"'),
    ],
)  # fmt: skip
def test_a_backend_refuses_another_party_s_key_a_missing_enrolment_and_an_unreachable_database(
    keys, tmp_path, backend, options, reason
):
    """Each started before: acks signed with a key no machine trusts, no machine ever enrolled, or exit 70."""
    port = dead_port()
    given = {"--key": f"{backend}.key", "--machines": "machines", "--db": str(tmp_path / "b.db"), **dict([options])}
    paths = {name: value if "://" in value or value.startswith("/") else str(keys / value)
             for name, value in given.items()}  # fmt: skip
    paths["--db"] = paths["--db"].format(port=port)
    argv = [arg for name, value in paths.items() for arg in (name, value)]
    out = vending("backend", backend, "--broker", f"mqtt://127.0.0.1:{dead_port()}", *argv)
    assert out.returncode == 2 and reason.format(keys=keys) in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "secret-pw" not in out.stderr + out.stdout
    assert not (tmp_path / "b.db").exists(), "nothing made"
    assert not list(Path.cwd().glob("postgres*")), "a database URL taken for a file's path"


@pytest.mark.parametrize(
    "backend,options,reason",
    [
        ("vendor", ["--retention-days", "30", "--now", "2099-01-01"], "--now 2099-01-01: after today"),
        ("vendor", ["--now", "2099-01-01"], "--now 2099-01-01: after today"),  # its default period, 180 days
        ("issuer", ["--retention-days", "30", "--now", "2099-01-01"], "--now 2099-01-01: after today"),
        ("issuer", ["--now", "2026-01-01"], "--now: the day the retention period counts back from; give --retention"),
    ],
)  # fmt: skip
def test_a_retention_day_not_yet_come_or_a_day_without_a_period_is_refused_before_anything_starts(
    keys, tmp_path, backend, options, reason
):
    """`--now 2099-01-01` forgot every report the store held (none was a period older than that day), and the
    issuer's `--now` without `--retention-days` (it keeps everything by default) was ignored without a word."""
    common = ["--broker", f"mqtt://127.0.0.1:{dead_port()}", "--key", str(keys / f"{backend}.key"),
              "--machines", str(keys / "machines"), "--db", str(tmp_path / "b.db")]  # fmt: skip
    out = vending("backend", backend, *common, *options)
    assert out.returncode == 2 and reason in out.stderr, out.stderr
    assert not (tmp_path / "b.db").exists(), "nothing made"


def test_cmd_send_to_a_machine_never_heard_says_so(keys):
    with EmbeddedBroker() as broker:
        out = vending("cmd", "send", "restock", "A1=3", "--machine", "TPE-TYPO-01", "--wait", "1",
                      "--key", str(keys / "vendor.key"), "--broker", broker.url)  # fmt: skip
    assert out.returncode == 3
    assert "no machine TPE-TYPO-01 has been heard on this broker (no status retained): is the id right?" in out.stdout


def test_a_backend_on_a_dead_broker_says_so_at_once_naming_it_and_ctrl_c_exits_130(keys, tmp_path):
    port = dead_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [VENDING, "backend", "vendor", "--broker", f"mqtt://127.0.0.1:{port}", "--db", str(tmp_path / "v.db"),
         "--key", str(keys / "vendor.key"), "--machines", str(keys / "machines")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        warning = process.stderr.readline()
        assert f"warning: cannot reach the broker at mqtt://127.0.0.1:{port}: connection refused" in warning
        assert time.monotonic() - started < 14, "said at once, not after the 15 s subscription wait"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 130


def test_a_misspelt_scenario_key_is_named_with_the_key_it_was_meant_to_be(tmp_path):
    text = (CONFIGS / "scenarios" / "sold-out.yaml").read_text().replace("\nsteps:", "\nstepz:")
    text = text.replace("machine: ../machines/demo.yaml", f"machine: {CONFIGS / 'machines' / 'demo.yaml'}")
    (tmp_path / "typo.yaml").write_text(text)
    out = vending("run", str(tmp_path / "typo.yaml"), "--broker", "none")
    assert out.returncode == 2 and "typo.yaml:7: stepz: unknown key; did you mean 'steps'?" in out.stderr


def test_a_reader_port_that_is_no_device_is_named_and_never_opened(tmp_path):
    """A file or a directory given as the port was opened read-write, then 'Inappropriate ioctl for device'."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in ((notes, "a file"), (tmp_path, "a directory"), (fifo, "a FIFO")):
        with pytest.raises(VendingError, match=re.escape(f"cannot open {path}: not a serial port but {kind}")):
            SerialTransport(str(path), 9600)
    assert notes.read_text() == "keep me\n"


def test_a_reader_port_that_does_not_exist_points_at_reader_list():
    with pytest.raises(VendingError, match=r"cannot open /dev/ttyNOPE: no such port \(`vending reader list`"):
        SerialTransport("/dev/ttyNOPE", 9600)


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["fleet", "--machines", "1", "--kill-mid-day"], "--kill-mid-day: only with --broker rabbitmq-cluster"),
        (
            ["run", "configs/scenarios/normal-morning.yaml", "--broker", "rabbitmq-cluster"],
            "broker URL 'rabbitmq-cluster': expected mqtt://host:port",
        ),  # fmt: skip
        (["broker", "cluster", "--dir", "x", "--nodes", "2"], "Invalid value for '--nodes'"),
        (
            ["fleet", "--broker", "mqtts://127.0.0.1:1,mqtt://127.0.0.1:2"],
            "every node of one broker uses the same scheme",
        ),
        (["fleet", "--day", "9999-12-31"], "--day 9999-12-31: a simulated day is in the years 2000-2098"),  # exit 70
        (["fleet", "--day", "1999-12-31"], "--day 1999-12-31: a simulated day is in the years 2000-2098"),
        (  # the Monday after ran, and neither the table nor --json said which day it was
            ["fleet", "--day", "2026-12-06", "--machines", "1"],
            "--day 2026-12-06: a Sunday; a school day is Monday to Friday (the next is 2026-12-07)",
        ),
    ],
)
def test_cluster_arguments_that_cannot_work_are_refused_naming_why(arguments, said, tmp_path):
    out = vending(*arguments)
    assert out.returncode == 2 and said in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_fleet_out_directory_that_holds_anything_is_refused_before_a_broker_starts(tmp_path):
    """Run again into the same --out, every machine started on the last run's books, its clock behind them:
    every sale refused out of service, the backends counting both runs ("-83 report(s) produced but not stored")."""
    used = tmp_path / "world"
    used.mkdir()
    (used / "vendor.db").write_text("")
    out = vending("fleet", "--machines", "1", "--students", "10", "--out", str(used), "--broker", "embedded")
    assert out.returncode == 2 and f"--out {used}: not an empty directory" in out.stderr, out.stderr
    assert sorted(path.name for path in used.iterdir()) == ["vendor.db"] and "broker" not in out.stdout


def test_a_backend_on_amqp_needs_tls_and_its_certificate(keys, tmp_path):
    common = ["backend", "vendor", "--broker", "mqtts://127.0.0.1:1", "--db", "x.db", "--key", str(keys / "vendor.key"),
              "--machines", str(keys / "machines")]  # fmt: skip
    out = vending(*common, "--amqp", "amqps://127.0.0.1:5671")
    assert out.returncode == 2 and "--amqp: needs --ca, --cert and --cert-key" in out.stderr
    out = vending(*common, "--amqp", "amqps://127.0.0.1:5671", "--ca", str(tmp_path / "ca.crt"))
    assert out.returncode == 2 and f"--ca {tmp_path / 'ca.crt'}: no such file" in out.stderr, out.stderr
    files = [tmp_path / name for name in ("ca.crt", "v.crt", "v.key")]
    for path in files:
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    cert = [
        part for flag, path in zip(("--ca", "--cert", "--cert-key"), files, strict=True) for part in (flag, str(path))
    ]
    out = vending(*common, "--amqp", "amqp://127.0.0.1:5672", *cert)
    assert out.returncode == 2 and "expected amqps://host:port (TLS; plain AMQP is refused)" in out.stderr, out.stderr
    for url, reason in [  # a traceback (exit 70), then the port and the vhost dropped without a word
        ("amqps://127.0.0.1:99999", "the port is a whole number from 1 to 65535"),
        ("amqps://127.0.0.1:0", "the port is a whole number from 1 to 65535"),
        ("amqps://127.0.0.1:5671/school", "expected amqps://host:port (TLS; plain AMQP is refused), nothing after it"),
    ]:
        out = vending(*common, "--amqp", f"amqps://127.0.0.1:5671,{url}", *cert)
        assert out.returncode == 2 and f"--amqp {url!r}: {reason}" in out.stderr, out.stderr


def test_a_certificate_file_that_is_not_pem_is_named(keys, tmp_path):
    junk = tmp_path / "ca.crt"
    junk.write_text("not a certificate\n")
    out = vending("backend", "vendor", "--broker", "mqtts://127.0.0.1:1", "--db", str(tmp_path / "v.db"),
                  "--key", str(keys / "vendor.key"), "--machines", str(keys / "machines"),
                  "--ca", str(junk))  # fmt: skip
    assert out.returncode == 2 and f"--ca {junk}: not a CA certificate in PEM" in out.stderr, out.stderr


def test_a_fleet_on_a_broker_it_cannot_reach_names_it_as_vending_run_does():
    """The environment's fault (exit 2), as for `vending run` and `vending demo`: not an internal error (70)."""
    port = dead_port()
    out = vending("fleet", "--machines", "2", "--broker", f"mqtt://127.0.0.1:{port}")
    assert out.returncode == 2, out.stderr[-300:]
    assert f"cannot start reporting on broker 'mqtt://127.0.0.1:{port}': vendor-backend never connected" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("reader", ["rdm6300:/dev/ttyS9", "line:/dev/ttyS9?format=dec", "virtual:"])
def test_a_purse_card_machine_on_a_reader_that_only_reads_ids_is_refused_before_it_starts(reader, keys, tmp_path):
    """Every tap would have been refused as a card not recognised: the purse is read and debited through the reader."""
    state = tmp_path / "state"
    out = vending("serve", "--machine", str(CONFIGS / "machines/demo.yaml"), "--payment", "card",
                  "--card-keys", str(keys), "--reader", reader, "--state-dir", str(state))  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert f"reader {reader!r}: the purse on the card is read and debited through the reader" in out.stderr
    assert "use pn532" in out.stderr and not state.exists(), "nothing written: no state dir, no key installed"


@pytest.mark.parametrize(
    ("command", "whose"),
    [
        (["backend", "issuer", "accounts"], "the issuer's"),
        (["backend", "issuer", "topup", "--card", "04A1B2C3", "--amount", "5", "--key", "issuer.key"], "the issuer's"),
        (["school", "controls", "show"], "the school's"),
        (["backend", "school", "--roster", "roster.csv"], "the school's"),
    ],
)
def test_a_database_url_is_refused_where_a_party_keeps_an_sqlite_file(command, whose, tmp_path):
    """Only the vendor keeps reports in PostgreSQL; elsewhere a URL made a folder and a file named after a password."""
    out = subprocess.run([VENDING, *command, "--db", "postgresql://nobody:secret-pw@127.0.0.1/x"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    reason = f"--db postgresql://...: {whose} database is an SQLite file; only the vendor keeps reports in PostgreSQL"
    assert out.returncode == 2 and reason in out.stderr, out.stderr
    assert "secret-pw" not in out.stderr + out.stdout and not list(tmp_path.iterdir()), "nothing made"


@pytest.mark.parametrize(
    ("command", "made_by"),
    [  # each made an empty database at the mistyped path, then answered from it
        (["school", "erase", "--student", "s-1", "--term", "2026-1", "--terms", "terms", "--keys", "keys",
          "--broker", "mqtt://127.0.0.1:9"], "`vending backend school --db DB --roster CSV`"),  # "not on the roster"
        (["backend", "issuer", "topup", "--card", "04A1B2C3", "--amount", "5", "--key", "issuer.key"],
         "`vending backend issuer open`"),  # "the issuer holds no account for this card"
        (["issuer", "hotlist", "publish", "--keys", "keys", "--broker", "mqtt://127.0.0.1:9"],
         "`vending issuer hotlist add`"),  # an empty list kept as version 1, for the machines
    ],
)  # fmt: skip
def test_a_command_on_a_party_s_records_needs_its_database_and_makes_none(command, made_by, tmp_path):
    db = tmp_path / "typo" / "party.db"
    out = subprocess.run([VENDING, *command, "--db", str(db)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2 and f"--db {db}: no such file ({made_by} makes it)" in out.stderr, out.stderr
    assert not list(tmp_path.iterdir()), "nothing made"


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["keys", "init", "--state-dir", "", "--valid-until", "2099-01-31"], "'--state-dir'"),
        (["keys", "party", "vendor", "--out", ""], "'--out'"),
        (["init", ""], "'directory'"),
        (["run", str(CONFIGS / "scenarios/normal-morning.yaml"), "--state-dir", ""], "'--state-dir'"),
        (["check", str(CONFIGS / "machines/demo.yaml"), ""], "'files'"),
        (["backend", "issuer", "accounts", "--db", ""], "'--db'"),
    ],
)
def test_an_empty_path_is_refused_and_nothing_is_written_where_the_command_ran(tmp_path, command, named):
    """pathlib reads "" as '.': `--state-dir "$UNSET"` put a machine's books, a term key or a party's private
    key in the current directory without a word."""
    out = subprocess.run([VENDING, *command], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"Invalid value for {named}: an empty path: give the path, or '.' for the current directory" in " ".join(
        out.stderr.replace("│", " ").split()
    ), out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_firmware_on_its_own_refuses_an_empty_state_dir(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "firmware", "--machine", str(CONFIGS / "machines/demo.yaml"), "--reader", "virtual:",
         "--state-dir", ""],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 2
    assert "argument --state-dir: an empty path: give the path, or '.' for the current directory" in out.stderr
    assert list(tmp_path.iterdir()) == []
