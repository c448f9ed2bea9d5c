"""The configs and the contract that ship with the package, found the same way in a checkout and in a wheel.

``configs/`` and ``docs/asyncapi.yaml`` stay at the top of the repository and install as the data
packages ``vending_configs`` and ``vending_contract`` (pyproject.toml); importlib.resources finds
them wherever the package is installed, never by a path relative to this file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def configs_dir() -> Path:
    """The shipped configs: ``machines/``, ``products/``, ``rules/``, ``scenarios/``."""
    return Path(str(files("vending_configs")))


def contract_file() -> Path:
    """docs/asyncapi.yaml: every topic's payload schema."""
    return Path(str(files("vending_contract").joinpath("asyncapi.yaml")))
