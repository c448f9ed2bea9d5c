"""The `vending` command's contract: exit codes, event lines, JSON, validation errors, help."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from simulator.safe_output import all_or_nothing
from tests.conftest import CONFIGS, VENDING, vending_on_a_full_disk

MORNING = CONFIGS / "scenarios/normal-morning.yaml"


def vending(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VENDING, *args], capture_output=True, text=True, timeout=120)


def test_run_passes_and_prints_one_line_per_event_then_a_summary():
    out = vending("run", "--script", str(MORNING), "--broker", "none")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("2026-03-02T07:30:00+08:00  power_on")
    assert lines[-1].startswith("summary: sales 5, revenue NT$105")
    assert "28 passed, 0 failed" in lines[-1]


def test_json_lines_have_time_with_offset_and_event():
    out = vending("run", "--script", str(MORNING), "--broker", "none", "--json")
    assert out.returncode == 0
    records = [json.loads(line) for line in out.stdout.splitlines()]
    for record in records[:-1]:
        assert datetime.fromisoformat(record["t"]).utcoffset() is not None
        assert isinstance(record["event"], str)
    assert records[-1]["event"] == "summary" and records[-1]["expectations_failed"] == 0


def test_a_wrong_expectation_exits_1_with_expected_and_actual(tmp_path: Path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        MORNING.read_text()
        .replace("machine: ../machines/demo.yaml", f"machine: {CONFIGS / 'machines/demo.yaml'}")
        .replace("balance: 75", "balance: 74")
    )
    out = vending("run", "--script", str(wrong), "--broker", "none")
    assert out.returncode == 1
    assert "FAILED line 15: expect balance: expected 74, got 75" in out.stdout


def test_invalid_input_exits_2_with_file_line_field_reason(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f'machine: {CONFIGS / "machines/demo.yaml"}\nstart: "2026-03-02T07:30:00+08:00"\n'
        "steps:\n  - select: A1\n  - dance: true\n"
    )
    for command in (["run", "--script", str(bad)], ["check", str(bad)]):
        out = vending(*command)
        assert out.returncode == 2
        assert out.stderr.startswith(f"{bad}:5: steps.1.dance: unknown step 'dance'")


def test_check_accepts_every_shipped_file():
    files = sorted(str(p) for p in CONFIGS.rglob("*.yaml"))
    out = vending("check", "--strict", *files)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok (") == len(files)


def test_strict_check_refuses_a_refused_product_unless_it_is_marked_as_on_purpose(tmp_path: Path):
    machine = tmp_path / "machine.yaml"
    text = (CONFIGS / "machines/demo.yaml").read_text().replace("../products/", f"{CONFIGS}/products/")
    machine.write_text(text.replace(", refused_on_purpose: true", ""))
    out = vending("check", "--strict", str(machine))
    assert out.returncode != 0 and "slot B3 holds tea-green-sweetened-300, refused by D1" in out.stderr


def test_broker_steps_need_reporting():
    out = vending("run", "--script", str(CONFIGS / "scenarios/broker-outage.yaml"), "--broker", "none")
    assert out.returncode == 2
    assert "needs MQTT reporting" in out.stderr


def test_run_help_documents_every_option():
    out = vending("run", "--help")
    for option in ("--script", "--machine", "--json", "--state-dir", "--broker", "Exit 0", "2"):
        assert option in out.stdout


def test_check_names_the_line_of_a_bad_rule(tmp_path: Path):
    bad = tmp_path / "rules.yaml"
    bad.write_text((CONFIGS / "rules/tw-moe-2016.yaml").read_text().replace("max: 250", "max: lots"))
    out = vending("check", str(bad))
    assert out.returncode == 2
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "max: lots" in text)
    assert out.stderr.startswith(f"{bad}:{line}: rules.")


def test_connection_options_are_refused_with_a_broker_the_run_starts_itself():
    out = vending("run", "--script", str(MORNING), "--broker", "embedded", "--ca", "ca.crt", "--username", "u")
    assert out.returncode == 2
    assert "--broker embedded: --username, --ca apply to an mqtt:// or mqtts:// broker only" in out.stderr


def test_run_reports_over_tls_with_a_client_certificate(tmp_path: Path, closing):
    """`vending run --broker mqtts://... --ca --cert --cert-key`: every party of the run uses that identity.

    A TLS broker of someone else's that takes client ids as given: the generated one binds each client id
    to its certificate (one certificate, one connection), so there a run's parties need certificates of
    their own, which `--broker mosquitto` gives them.
    """
    from simulator.servers.broker_setup import INSIDER, write_broker_setup
    from simulator.servers.mosquitto import MosquittoProcess, free_port
    from tests.support.reporting import require_mosquitto

    require_mosquitto()
    setup = write_broker_setup(tmp_path / "broker", [], free_port(), insider=True)
    config = setup.config.read_text().replace("use_username_as_clientid true\n", "")
    (tmp_path / "broker" / "theirs.conf").write_text(config)
    closing(MosquittoProcess(tmp_path / "mosquitto", setup.port, config=tmp_path / "broker" / "theirs.conf").start())
    address = setup.address(INSIDER)  # the run's machine and backends share one account: it must hold every right
    assert address.ca_file and address.cert_file and address.key_file
    out = vending(
        "run", "--script", str(MORNING), "--broker", f"mqtts://127.0.0.1:{address.port}",
        "--ca", address.ca_file, "--cert", address.cert_file, "--cert-key", address.key_file,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "28 passed, 0 failed" in out.stdout and "reports delivered" in out.stdout
    tls = ["--ca", address.ca_file, "--cert", address.cert_file, "--cert-key", address.key_file]
    url = f"mqtts://127.0.0.1:{address.port}"
    # an outage on a TLS broker the run does not own: the link is cut in the fault proxy, TLS still checked
    outage = vending("run", "--script", str(CONFIGS / "scenarios/broker-outage.yaml"), "--broker", url, *tls)
    assert outage.returncode == 0, outage.stdout[-1500:] + outage.stderr
    # a fleet's worker processes connect with the same identity, CA and all
    fleet = vending("fleet", "--machines", "2", "--students", "30", "--processes", "2", "--broker", url, *tls, "--json")
    assert fleet.returncode == 0, fleet.stderr
    figures = json.loads(fleet.stdout)
    assert figures["delivered"] == figures["reports"] > 0 and figures["broker"] == url


def test_version_and_short_help_everywhere() -> None:
    from importlib.metadata import version

    from typer.testing import CliRunner

    from simulator.cli import app

    shown = CliRunner().invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"vending {version('campus-vending')}"
    for command in (["-h"], ["run", "-h"], ["backend", "vendor", "-h"], ["school", "export", "-h"], ["stock", "-h"]):
        result = CliRunner().invoke(app, command, prog_name="vending")
        assert result.exit_code == 0 and "Usage: vending" in result.output, command
    root = CliRunner().invoke(app, ["-h"]).output
    assert "thin wrappers" not in root and "campus vending machine emulator" in root


def _every_command(group, path=()):
    """(words, click command) for the root and every command and subcommand under it."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():  # typer vendors its own click: duck-typed
        yield from _every_command(command, (*path, name))


def test_no_flag_shows_a_value_placeholder_and_completion_is_offered() -> None:
    import typer
    from typer.testing import CliRunner

    from simulator.cli import app

    commands = list(_every_command(typer.main.get_command(app)))
    assert len(commands) > 30
    for words, _command in commands:
        shown = CliRunner().invoke(app, [*words, "-h"], prog_name="vending", terminal_width=200)
        assert shown.exit_code == 0, words
        assert "<bool>" not in shown.output, words
        assert "--help" in shown.output, words
    assert "--install-completion" in CliRunner().invoke(app, ["-h"]).output


def test_run_on_a_broker_of_yours_never_takes_over_your_backend_s_session(closing):
    """Your backend, connected as `vendor-backend`, stays connected through a `vending run` on its broker."""
    import threading

    from firmware.reporting.mqtt import BrokerAddress, make_client
    from simulator.servers.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()  # closed below, not stopped: stop keeps its loop thread for a restart
    address = BrokerAddress("127.0.0.1", broker.port)
    yours = make_client(address, "vendor-backend", persistent=True)
    connected, dropped = threading.Event(), threading.Event()
    yours.on_connect = lambda *a: connected.set()
    yours.on_disconnect = lambda *a: dropped.set()
    yours.connect(address.host, address.port)
    yours.loop_start()
    try:
        assert connected.wait(10)
        out = vending("run", "--script", str(MORNING), "--broker", f"mqtt://127.0.0.1:{broker.port}")
        assert out.returncode == 0, out.stderr
        assert "28 passed, 0 failed" in out.stdout
        assert "to this run's own backends (client ids vendor-backend-run-" in out.stdout
        assert not dropped.is_set(), "the run took over your backend's client id"
    finally:
        yours.disconnect()
        yours.loop_stop()
        broker.close()


def test_init_scaffolds_files_that_pass_strict_check_and_run(tmp_path: Path) -> None:
    target = tmp_path / "my-machine"
    made = vending("init", str(target), "--machine-id", "TPE-NEW-01")
    assert made.returncode == 0, made.stderr
    files = [target / "machine.yaml", target / "catalog.yaml", target / "scenarios" / "first-morning.yaml"]
    checked = vending("check", "--strict", *map(str, files))
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    ran = vending("run", "--script", str(files[2]), "--broker", "none")
    assert ran.returncode == 0 and ", 0 failed" in ran.stdout, ran.stdout
    assert "id: TPE-NEW-01" in files[0].read_text()

    before = files[0].read_text()
    again = vending("init", str(target))
    assert again.returncode == 2 and "already exist; nothing written (--force to overwrite)" in again.stderr
    assert files[0].read_text() == before
    bad = vending("init", str(tmp_path / "other"), "--machine-id", "bad id")
    assert bad.returncode == 2 and "--machine-id: 'bad id'" in bad.stderr and not (tmp_path / "other").exists()
    (tmp_path / "a-file").write_text("")
    blocked = vending("init", str(tmp_path / "a-file" / "site"))  # a directory that cannot be made
    assert blocked.returncode == 2 and f"{tmp_path / 'a-file'}" in blocked.stderr and "cannot write" in blocked.stderr


def test_init_that_fails_on_its_last_file_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "scenarios").write_text("")  # a file where init's scenarios/ folder goes: the third write fails
    out = vending("init", str(fresh))
    assert out.returncode == 2 and "nothing written" in out.stderr, out.stderr
    assert sorted(path.name for path in fresh.iterdir()) == ["scenarios"]  # machine.yaml and catalog.yaml undone

    forced = tmp_path / "forced"
    (forced / "scenarios").mkdir(parents=True)
    (forced / "machine.yaml").write_text("mine\n")
    (forced / "catalog.yaml").write_text("my catalog\n")
    (forced / "scenarios" / "first-morning.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    out = vending("init", str(forced), "--force")
    assert out.returncode == 2 and "is a symlink; nothing is written through one" in out.stderr, out.stderr
    assert (forced / "machine.yaml").read_text() == "mine\n"  # replaced, then given its bytes back
    assert (forced / "catalog.yaml").read_text() == "my catalog\n"
    assert not (tmp_path / "elsewhere.yaml").exists()


def test_init_that_fills_the_disk_mid_file_leaves_no_part_of_it(tmp_path: Path) -> None:
    """A file size limit of 2,000 bytes cuts the 3.9 KB catalog: "nothing written" was said, and its first
    2,000 bytes stayed, so the next `vending init` refused the half catalog as a file already there."""
    site = tmp_path / "site"
    cut = vending_on_a_full_disk(2000, "init", str(site))
    assert cut.returncode == 2 and f"{site}: cannot write: File too large; nothing written" in cut.stderr, cut.stderr
    assert not site.exists(), sorted(str(path) for path in site.rglob("*"))
    assert vending("init", str(site)).returncode == 0
    assert vending("check", "--strict", str(site / "catalog.yaml")).returncode == 0


def test_all_or_nothing_removes_the_folders_it_made_and_keeps_what_others_put_there(tmp_path: Path) -> None:
    site = tmp_path / "new" / "site"
    with pytest.raises(RuntimeError), all_or_nothing(site) as write:
        write("a/one.yaml", "1", replace=False)
        write("two.yaml", "2", replace=False)
        raise RuntimeError("the check after the writes failed")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), all_or_nothing(tmp_path / "kept" / "site") as write:
        write("one.yaml", "1", replace=False)
        (tmp_path / "kept" / "site" / "theirs.txt").write_text("")  # somebody else's file in the new folder
        raise RuntimeError
    assert sorted(path.name for path in (tmp_path / "kept" / "site").iterdir()) == ["theirs.txt"]


def test_the_demo_s_issuer_table_shows_what_operators_refunded_that_day() -> None:
    """The settlement carries it (the issuer pays it back to the cards); the table showed the day's total only."""
    out = vending("demo", "--scenario", str(CONFIGS / "scenarios" / "operator-refund.yaml"))
    assert out.returncode == 0, out.stderr
    issuer = out.stdout[out.stdout.index("Issuer learned") :]
    assert re.search(r"2026-03-02 │ day total\s*│ 25\s*│ 1", issuer) and re.search(r"│ refunded\s*│ 25\s*│", issuer)


def test_demo_without_reporting_runs_every_check_it_can_and_names_the_ones_it_skips():
    out = vending("demo", "--broker", "none")
    assert out.returncode == 0, out.stderr
    assert "expectations 19 passed, 0 failed" in out.stdout
    assert "reports delivered" not in out.stdout
    assert "demo-school-day.yaml:42: expect outbox/backend_sales skipped (needs reporting)" in out.stderr


def test_a_state_dir_holding_another_machine_is_invalid_input_not_a_crash(tmp_path: Path):
    other = tmp_path / "other.yaml"
    other.write_text(
        (CONFIGS / "machines/demo.yaml")
        .read_text()
        .replace("id: TPE-DAAN-JH-01", "id: TPE-DAAN-JH-02")
        .replace("../products/", f"{CONFIGS}/products/")
    )
    first = vending("run", "--script", str(MORNING), "--broker", "none", "--state-dir", str(tmp_path / "state"))
    assert first.returncode == 0, first.stderr
    out = vending(
        "run",
        "--script",
        str(MORNING),
        "--machine",
        str(other),
        "--broker",
        "none",
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert out.returncode == 2, out.stderr
    assert "holds machine TPE-DAAN-JH-01, not TPE-DAAN-JH-02" in out.stderr and "Traceback" not in out.stderr


def test_a_state_dir_whose_books_go_past_the_scenario_s_start_is_refused_and_continue_runs_out_of_order(tmp_path):
    state = str(tmp_path / "state")
    first = vending("run", "--script", str(MORNING), "--broker", "none", "--state-dir", state)
    assert first.returncode == 0, first.stderr
    again = vending("run", "--script", str(MORNING), "--broker", "none", "--state-dir", state)
    assert again.returncode == 2 and "after the scenario starts (2026-03-02T07:30:00+08:00)" in again.stderr
    assert "clock behind its books" in again.stderr and "Traceback" not in again.stderr
    anyway = vending("run", "--script", str(MORNING), "--broker", "none", "--state-dir", state, "--continue")
    assert anyway.returncode == 1, "on purpose: the expectations meet a machine that is out of order"
    lines = [line for line in anyway.stdout.splitlines() if line[:4].isdigit()]  # the event lines
    first_sale = next(n for n, line in enumerate(lines) if line.split()[1] == "vended")
    before = lines[:first_sale]
    assert any(line.split()[1] == "fault" and "clock behind the books" in line for line in before)
    refusals = [line for line in before if line.split()[1] == "denied"]
    assert len(refusals) >= 4 and all("reason=out_of_service" in line for line in refusals), (
        "refused until the scenario's time reaches the books' (10:10), then selling again"
    )


def test_a_bug_exits_with_the_documented_internal_error_code_and_says_where():
    import sys

    from simulator.cli.exits import EXIT_CODES, EXIT_INTERNAL

    program = (
        "import sys\nfrom simulator.cli import app, main\n"
        "@app.command('explode')\ndef explode() -> None:\n    raise RuntimeError('a bug')\n"
        "sys.argv = ['vending', 'explode']\nmain()\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == EXIT_INTERNAL and EXIT_INTERNAL in EXIT_CODES
    assert "internal error: RuntimeError: a bug (exit 70; please report)" in out.stderr
    assert 'File "<string>", line 5, in explode' in out.stderr  # the traceback says where
