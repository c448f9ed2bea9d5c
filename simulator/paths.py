"""Where the shipped configs live (the repository's ``configs/`` next to the packages)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SCENARIOS = CONFIGS / "scenarios"
MACHINES = CONFIGS / "machines"
