"""``vending init DIR``: a machine config, its catalog and a first scenario that pass ``vending check --strict``.

The catalog is the shipped campus catalog, copied (one source of truth for product facts); the
machine and the scenario are written from the templates below, with the machine id filled in and
checked by the same validation every config goes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from firmware.config.machine import load_machine
from firmware.errors import VendingError
from simulator.cli.exits import fail, new_machine_id, unwritable
from simulator.paths import CONFIGS
from simulator.safe_output import all_or_nothing
from simulator.scenarios.schema import load_scenario

MACHINE = """\
# Your machine: edit the slots, the lockouts and the school; `vending check --strict {dir}/machine.yaml`.
id: {machine_id}
school: {{code: "000000", level: junior_high}}
timezone: Asia/Taipei
currency: TWD
catalog: catalog.yaml
rules: [tw-moe-2016, tpe-no-bottled-water]   # campus food rules (docs/rules.md)
lockouts:
  - {{profiles: [student], categories: [snack], from: "11:00", to: "13:00"}}
timeouts: {{card: 30, selection: 30, session: 120}}
low_stock: 2
release_minutes: 15                          # sales reach the vendor per 15-minute window, shuffled
slots:
  A1: {{product: milk-lowfat-290, capacity: 10, stock: 10}}
  A2: {{product: soymilk-250, capacity: 10, stock: 10}}
  B1: {{product: juice-guava-250, capacity: 8, stock: 8}}
  C1: {{product: crackers-seaweed-30, capacity: 12, stock: 12}}
  D1: {{product: bread-wholewheat-60, capacity: 6, stock: 6}}
  E1: {{product: pencil-hb, capacity: 20, stock: 20}}
"""

SCENARIO = """\
# A first morning: a sale, a lunchtime snack refusal for a student, and a staff member who may buy.
# Run it: vending run --script {dir}/scenarios/first-morning.yaml
machine: ../machine.yaml
start: "2026-03-02T07:45:00+08:00"
cards:
  pupil: {{uid: "04A1B2C3D4E5F6", profile: student, balance: 100}}
  teacher: {{uid: "0499887766AA01", profile: staff, balance: 300}}
steps:
  - expect: {{state: idle, display: Welcome}}
  - select: A1
  - tap: pupil
  - expect: {{outcome: vended, slot: A1, balance: 75, stock: {{A1: 9}}}}
  - at: "11:30"
  - select: C1
  - tap: pupil
  - expect: {{outcome: denied, reason: lunch_lockout, balance: 75}}
  - cancel: true                             # the pupil walks away (else the session waits for another choice)
  - select: C1
  - tap: teacher
  - expect: {{outcome: vended, slot: C1, stock: {{C1: 11}}}}
"""


def init(
    directory: Annotated[Path, typer.Argument(help="Where to write machine.yaml, catalog.yaml and scenarios/.")],
    machine_id: Annotated[str, typer.Option(help="The machine id (part of its MQTT topics).")] = "MY-SCHOOL-01",
    force: Annotated[bool, typer.Option(help="Overwrite files that are already there.")] = False,
) -> None:
    """Scaffold a machine config, its catalog and a first scenario, all passing `vending check --strict`."""
    new_machine_id(machine_id, "--machine-id")
    texts = {
        "machine.yaml": MACHINE.format(machine_id=machine_id, dir=directory),
        "catalog.yaml": (CONFIGS / "products" / "campus.yaml").read_text(encoding="utf-8"),
        "scenarios/first-morning.yaml": SCENARIO.format(dir=directory),
    }
    files = {directory / name: text for name, text in texts.items()}
    present = [str(path) for path in files if path.exists() or path.is_symlink()]
    if present and not force:
        fail(f"{', '.join(present)} already exist; nothing written (--force to overwrite)")
    try:  # all three files or none: a refusal leaves the directory as it was
        with all_or_nothing(directory) as write:
            for name, text in texts.items():  # never through a symlink, never outside the directory
                write(name, text, replace=force)
            load_machine(directory / "machine.yaml")  # the id and everything else as `vending check` sees them
            load_scenario(directory / "scenarios" / "first-morning.yaml")
    except VendingError as exc:
        fail(exc)
    except OSError as exc:
        unwritable(exc.filename or directory, exc)
    for path in files:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: vending run --script {directory / 'scenarios' / 'first-morning.yaml'}")
