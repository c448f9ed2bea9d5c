"""The campus food rule-set file format (configs/rules/*.yaml): validated like every other input, FILE:LINE errors.

The rules are data the school owns; ``firmware.policy.rules`` evaluates products against them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from firmware.config.catalog import Names
from firmware.config.packaged import configs_dir
from firmware.config.source import Strict, read_yaml, validate
from firmware.domain import Kind, SchoolLevel
from firmware.errors import InputError

RULES_DIR = configs_dir() / "rules"  # the packaged rule sets; a config may name a file instead
Measure = Literal["kcal", "fat_pct", "sat_fat_pct", "added_sugar_pct", "fat_sugar_pct", "sodium_mg", "trans_fat_g"]


class LimitRule(Strict):
    """measure <= max (inclusive), optionally for some kinds only, or with a per-kind limit."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]{0,15}$")
    type: Literal["limit"]
    measure: Measure
    max: float = Field(ge=0)
    only_kinds: list[Kind] | None = None
    except_kinds: list[Kind] = []
    max_by_kind: dict[Kind, float] = {}


class AllowedKindsRule(Strict):
    """Among products of the kinds in ``scope`` (drinks), only the ``allowed`` kinds may be sold."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]{0,15}$")
    type: Literal["allowed_kinds"]
    scope: list[Kind] = Field(min_length=1)
    allowed: list[Kind]


class ForbiddenKindsRule(Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]{0,15}$")
    type: Literal["forbidden_kinds"]
    kinds: list[Kind] = Field(min_length=1)


class NoAdditivesRule(Strict):
    """Article 15: no sweeteners or fat substitutes, and a nutrition label is required."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]{0,15}$")
    type: Literal["no_additives"]


Rule = Annotated[LimitRule | AllowedKindsRule | ForbiddenKindsRule | NoAdditivesRule, Field(discriminator="type")]


class RuleSet(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    title: Names
    source: str
    levels: list[SchoolLevel] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)


def available() -> list[str]:
    return sorted(path.stem for path in RULES_DIR.glob("*.yaml"))


def is_rule_file(entry: str) -> bool:
    """A machine config's ``rules:`` entry that names a file (relative to the config) instead of a packaged set."""
    return entry.endswith((".yaml", ".yml")) or "/" in entry


def load_ruleset_file(path: Path) -> RuleSet:
    """A rule set of the school's own, from its file; its id is whatever the file says."""
    return validate(RuleSet, read_yaml(path))


def load_ruleset(rule_id: str) -> RuleSet:
    path = RULES_DIR / f"{rule_id}.yaml"
    ruleset = validate(RuleSet, read_yaml(path))
    if ruleset.id != rule_id:
        raise InputError(str(path), 1, "id", f"id {ruleset.id!r} does not match the file name")
    return ruleset


def load_rulesets(ids: list[str]) -> list[RuleSet]:
    return [load_ruleset(rule_id) for rule_id in ids]


def find_ruleset(entry: str, base: Path) -> RuleSet | str:
    """A packaged rule set by name, or a school's own from its file (relative to ``base``); or why neither.

    One reading for a machine config's ``rules:`` and ``vending rules check --rules``, so a school's own
    rule set can be checked against a catalog before a machine is configured with it.
    """
    if is_rule_file(entry):
        path = base / entry
        return load_ruleset_file(path) if path.is_file() else f"rule set file {entry!r} not found ({path})"
    if entry not in (known := available()):
        return f"unknown rule set {entry!r}; known: {', '.join(known)}"
    return load_ruleset(entry)


def find_rulesets(entries: list[str], base: Path) -> list[RuleSet] | tuple[int, str]:
    """Each entry's rule set (``find_ruleset``), or the index of the first at fault and why.

    Two files of one rule set (a school's copy under another name) applied its rules twice.
    """
    found: list[RuleSet] = []
    for index, entry in enumerate(entries):
        ruleset = find_ruleset(entry, base)
        if isinstance(ruleset, str):
            return index, ruleset
        if any(earlier.id == ruleset.id for earlier in found):
            return index, f"{entry!r} is rule set {ruleset.id!r}, which is listed already"
        found.append(ruleset)
    return found
