"""Reads a product's label against rule sets: a verdict with every violated rule, value and limit.

Pure and total: any product that passed validation gets a verdict, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware.config.catalog import FAT_KCAL_PER_G, SUGAR_KCAL_PER_G, Product
from firmware.config.rules import AllowedKindsRule, ForbiddenKindsRule, LimitRule, NoAdditivesRule, RuleSet
from firmware.domain import Kind

# measure -> (zh-TW label, en label, unit after the value, unit after the limit)
MEASURE_TEXT: dict[str, tuple[str, str, str, str]] = {
    "kcal": ("熱量", "energy", " kcal", " kcal"),
    "fat_pct": ("脂肪占熱量", "fat", " % of energy", " %"),
    "sat_fat_pct": ("飽和脂肪占熱量", "saturated fat", " % of energy", " %"),
    "added_sugar_pct": ("添加糖占熱量", "added sugar", " % of energy", " %"),
    "fat_sugar_pct": ("油脂加糖占熱量", "fat + sugar", " % of energy", " %"),
    "sodium_mg": ("鈉", "sodium", " mg", " mg"),
    "trans_fat_g": ("反式脂肪", "trans fat", " g", " g"),
}


@dataclass(frozen=True)
class Violation:
    rule: str
    value: float | None
    limit: float | None
    zh: str
    en: str


@dataclass(frozen=True)
class Verdict:
    product: str
    allowed: bool
    violations: tuple[Violation, ...]


def measures(product: Product) -> dict[str, float]:
    """Per-serving values and energy shares (a package is one serving)."""
    n = product.nutrition
    if n is None:
        return {}

    def share(kcal: float) -> float:
        return round(kcal / n.kcal * 100, 1) if n.kcal > 0 else 0.0

    fat, sugar = share(n.fat_g * FAT_KCAL_PER_G), share(n.added_sugar_g * SUGAR_KCAL_PER_G)
    return {
        "kcal": n.kcal,
        "fat_pct": fat,
        "sat_fat_pct": share(n.sat_fat_g * FAT_KCAL_PER_G),
        "added_sugar_pct": sugar,
        "fat_sugar_pct": round(fat + sugar, 1),
        "sodium_mg": n.sodium_mg,
        "trans_fat_g": n.trans_fat_g,
    }


def _fmt(value: float) -> str:
    return f"{value:g}"


def _limit(rule: LimitRule, kind: Kind, values: dict[str, float]) -> Violation | None:
    if rule.only_kinds is not None and kind not in rule.only_kinds:
        return None
    if kind in rule.except_kinds or rule.measure not in values:
        return None
    limit = rule.max_by_kind.get(kind, rule.max)
    value = values[rule.measure]
    if value <= limit:
        return None
    zh, en, unit, limit_unit = MEASURE_TEXT[rule.measure]
    zh_unit = unit.replace(" % of energy", "%").strip()
    return Violation(
        rule.id,
        value,
        limit,
        f"{rule.id}：{zh} {_fmt(value)}{zh_unit} > {_fmt(limit)}{limit_unit.replace(' %', '%').strip()}",
        f"{rule.id}: {en} {_fmt(value)}{unit} > {_fmt(limit)}{limit_unit}",
    )


def evaluate(product_id: str, product: Product, level: str, rulesets: Sequence[RuleSet]) -> Verdict:
    kind: Kind = product.kind or ("non_food" if product.category == "stationery" else "snack")
    if kind == "non_food":
        return Verdict(product_id, True, ())
    values = measures(product)
    found: list[Violation] = []
    for ruleset in rulesets:
        if level not in ruleset.levels:
            continue
        for rule in ruleset.rules:
            if isinstance(rule, LimitRule):
                violation = _limit(rule, kind, values)
            elif isinstance(rule, AllowedKindsRule):
                violation = (
                    None
                    if kind not in rule.scope or kind in rule.allowed
                    else Violation(
                        rule.id,
                        None,
                        None,
                        f"{rule.id}：校園不販售此類飲品（{kind}）",
                        f"{rule.id}: {kind.replace('_', ' ')} is not one of the drinks allowed on campus",
                    )
                )
            elif isinstance(rule, ForbiddenKindsRule):
                violation = (
                    None
                    if kind not in rule.kinds
                    else Violation(
                        rule.id,
                        None,
                        None,
                        f"{rule.id}：此類商品不得販售（{kind}）",
                        f"{rule.id}: {kind.replace('_', ' ')} may not be sold here",
                    )
                )
            else:
                violation = _additives(rule, product)
            if violation is not None:
                found.append(violation)
    return Verdict(product_id, not found, tuple(found))


def _additives(rule: NoAdditivesRule, product: Product) -> Violation | None:
    if product.sweeteners:
        names = ", ".join(product.sweeteners)
        return Violation(
            rule.id, None, None, f"{rule.id}：含甜味劑（{names}）", f"{rule.id}: contains sweeteners ({names})"
        )
    if product.fat_substitutes:
        return Violation(rule.id, None, None, f"{rule.id}：含代脂", f"{rule.id}: contains fat substitutes")
    if not product.labelled or product.nutrition is None:
        return Violation(rule.id, None, None, f"{rule.id}：缺營養標示", f"{rule.id}: no nutrition label")
    return None
