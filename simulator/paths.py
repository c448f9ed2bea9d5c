"""Where the shipped configs live: the package data ``vending_configs`` (the repository's ``configs/``).

``ROOT`` is the checkout, for the tools that only run in one (docgen, benchmarks); nothing an
installed ``vending`` runs may use it.
"""

from __future__ import annotations

from pathlib import Path

from firmware.config.packaged import configs_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = configs_dir()
SCENARIOS = CONFIGS / "scenarios"
MACHINES = CONFIGS / "machines"
