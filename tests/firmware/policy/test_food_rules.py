"""Campus food rules: every rule at its boundary, the two readings, the Taipei layer, and properties."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.config.catalog import Product, load_catalog
from firmware.config.rules import load_rulesets
from firmware.domain import DRINK_KINDS
from firmware.policy.rules import evaluate
from tests.conftest import CONFIGS, VENDING

MOE = load_rulesets(["tw-moe-2016"])
BOTH = load_rulesets(["tw-moe-2016", "tpe-no-bottled-water"])


def product(
    kind: str,
    kcal: float = 100,
    fat: float = 0,
    sat: float = 0,
    added: float = 0,
    sodium: float = 0,
    trans: float = 0,
    category: str | None = None,
    **facts,
) -> Product:
    """A label of ``kind``; a drink's category is drink unless given (dairy), a food's snack."""
    return Product.model_validate(
        {
            "name": {"zh-TW": "測", "en": "test"},
            "category": category or ("drink" if kind in DRINK_KINDS else "snack"),
            "price": 20,
            "kind": kind,
            "nutrition": {
                "serving_g": 100,
                "kcal": kcal,
                "fat_g": fat,
                "sat_fat_g": sat,
                "sugar_g": added,
                "added_sugar_g": added,
                "sodium_mg": sodium,
                "trans_fat_g": trans,
            },
            **facts,
        }
    )


# (name, product, rule sets, level, expected violated rule ids)
CASES = [
    ("250 kcal is allowed", product("snack", kcal=250), BOTH, "junior_high", []),
    ("251 kcal is refused", product("snack", kcal=251), BOTH, "junior_high", ["E1"]),
    ("400 mg sodium is allowed", product("snack", sodium=400), BOTH, "junior_high", []),
    ("401 mg sodium is refused", product("snack", sodium=401), BOTH, "junior_high", ["N1"]),
    (
        "soy milk at 30 % added sugar",
        product("soy_milk", kcal=100, added=7.5, category="drink"),
        BOTH,
        "junior_high",
        [],
    ),
    (
        "soy milk at 30.1 % added sugar",
        product("soy_milk", kcal=100, added=7.525, category="drink"),
        BOTH,
        "junior_high",
        ["S1"],
    ),
    (
        "drinking yogurt at 30 %",
        product("yogurt_drink", kcal=100, added=7.5, fat=1.1, sat=1.1, category="dairy"),
        BOTH,
        "junior_high",
        [],
    ),
    (
        "whole fresh milk, high fat",
        product("fresh_milk", kcal=130, fat=7.2, sat=4.6, category="dairy"),
        BOTH,
        "junior_high",
        [],
    ),
    ("UHT milk, high fat", product("uht_milk", kcal=130, fat=7.2, sat=4.6, category="dairy"), BOTH, "junior_high", []),
    ("egg, high fat (our reading: SF1 too)", product("egg", kcal=80, fat=5.5, sat=1.6), BOTH, "junior_high", []),
    ("snack with fat at 30 %", product("snack", kcal=90, fat=3), BOTH, "junior_high", []),
    ("snack with fat at 31 %", product("snack", kcal=90, fat=3.1), BOTH, "junior_high", ["F1"]),
    ("sat fat at 10 %", product("snack", kcal=90, fat=1, sat=1), BOTH, "junior_high", []),
    ("sat fat at 10.8 %", product("snack", kcal=100, fat=1.2, sat=1.2), BOTH, "junior_high", ["SF1"]),
    ("added sugar at 10 %", product("snack", kcal=100, added=2.5), BOTH, "junior_high", []),
    ("added sugar at 14.2 %", product("snack", kcal=100, added=3.55), BOTH, "junior_high", ["S1"]),
    (
        "bread at 25 % fat + 15 % sugar (B1 replaces F1, S1)",
        product("bread", kcal=180, fat=5, added=6.75, category="bakery"),
        BOTH,
        "junior_high",
        [],
    ),
    (
        "bread at 42 % fat + sugar",
        product("bread", kcal=100, fat=2.9, added=4, category="bakery"),
        BOTH,
        "junior_high",
        ["B1"],
    ),
    ("biscuit with 31 % fat", product("biscuit", kcal=100, fat=3.45, category="bakery"), BOTH, "junior_high", ["B1"]),
    ("rice cracker with 31 % sugar", product("rice_product", kcal=100, added=7.75), BOTH, "junior_high", ["B1"]),
    ("no trans fat", product("snack", trans=0), BOTH, "junior_high", []),
    ("0.1 g trans fat", product("snack", fat=0.1, trans=0.1), BOTH, "junior_high", ["T1"]),
    (
        "100 % juice: fruit sugar is not added sugar",
        product("juice_100", kcal=120, category="drink"),
        BOTH,
        "junior_high",
        [],
    ),
    (
        "unsweetened tea is not one of the 7 drinks",
        product("tea", kcal=0, category="drink"),
        BOTH,
        "junior_high",
        ["D1"],
    ),
    ("coffee", product("coffee", kcal=5, category="drink"), BOTH, "junior_high", ["D1"]),
    ("sports drink", product("sports_drink", kcal=60, category="drink"), BOTH, "junior_high", ["D1"]),
    ("flavoured milk", product("flavoured_milk", kcal=120, category="dairy"), BOTH, "junior_high", ["D1"]),
    ("lactic-acid drink", product("lactic_drink", kcal=60, category="drink"), BOTH, "junior_high", ["D1"]),
    ("bottled water, MOE alone", product("packaged_water", kcal=0, category="drink"), MOE, "junior_high", []),
    (
        "bottled water with the Taipei layer",
        product("packaged_water", kcal=0, category="drink"),
        BOTH,
        "junior_high",
        ["TPE-W1"],
    ),
    (
        "mineral water with the Taipei layer",
        product("mineral_water", kcal=0, category="drink"),
        BOTH,
        "elementary",
        ["TPE-W1"],
    ),
    (
        "zero-sugar soda with a sweetener at senior high",
        product("soda", kcal=1, category="drink", sweeteners=["sucralose"]),
        BOTH,
        "senior_high",
        ["D1", "A15"],
    ),
    ("a snack with a fat substitute", product("snack", fat_substitutes=True), BOTH, "junior_high", ["A15"]),
    ("an unlabelled snack", product("snack", labelled=False), BOTH, "junior_high", ["A15"]),
    ("a fruit", product("fruit", kcal=60), BOTH, "junior_high", []),
    (
        "stationery skips food rules",
        Product.model_validate(
            {"name": {"zh-TW": "筆", "en": "pen"}, "category": "stationery", "price": 10, "kind": "non_food"}
        ),
        BOTH,
        "junior_high",
        [],
    ),
]


@pytest.mark.parametrize("name,item,rulesets,level,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_table(name, item, rulesets, level, expected):
    verdict = evaluate("x", item, level, rulesets)
    assert [v.rule for v in verdict.violations] == expected
    assert verdict.allowed is (not expected)


def test_refusal_names_the_rule_and_the_numbers():
    verdict = evaluate("x", product("snack", kcal=100, added=3.55), "junior_high", BOTH)
    (violation,) = verdict.violations
    assert (violation.value, violation.limit) == (14.2, 10)
    assert violation.en == "S1: added sugar 14.2 % of energy > 10 %"
    assert violation.zh == "S1：添加糖占熱量 14.2% > 10%"


def test_demo_catalog_is_compliant_except_the_one_shown_refused():
    catalog = load_catalog(CONFIGS / "products/campus.yaml")
    refused = [pid for pid, p in catalog.products.items() if not evaluate(pid, p, "junior_high", BOTH).allowed]
    assert refused == ["tea-green-sweetened-300"]
    out = subprocess.run(
        [
            VENDING,
            "rules",
            "check",
            str(CONFIGS / "products/campus.yaml"),
            "--level",
            "junior_high",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    import json

    verdicts = {v["product"]: v for v in json.loads(out.stdout)}
    assert [p for p, v in verdicts.items() if not v["allowed"]] == ["tea-green-sweetened-300"]
    assert {"rule": "S1", "value": 100.0, "limit": 10.0} in verdicts["tea-green-sweetened-300"]["violations"]


nutrients = st.floats(min_value=0, max_value=60, allow_nan=False)
kinds = st.sampled_from(
    [
        "snack",
        "bread",
        "biscuit",
        "rice_product",
        "soy_milk",
        "yogurt_drink",
        "fresh_milk",
        "egg",
        "juice_100",
        "fruit",
        "meal",
        "tea",
        "packaged_water",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    kind=kinds,
    energy_beyond=st.floats(min_value=0, max_value=400, allow_nan=False),
    other_fat=nutrients,
    sat=nutrients,
    added=nutrients,
    sodium=st.floats(min_value=0, max_value=2000, allow_nan=False),
    trans=st.floats(min_value=0, max_value=3, allow_nan=False),
    level=st.sampled_from(["elementary", "junior_high", "senior_high"]),
    cut=st.floats(min_value=0, max_value=1),
    which=st.sampled_from(["other_fat", "added", "sodium", "sat", "trans"]),
)
def test_never_crashes_and_lowering_sugar_fat_or_sodium_never_refuses(
    kind, energy_beyond, other_fat, sat, added, sodium, trans, level, cut, which
):
    """Labels that add up (fat holds its saturated and trans parts, energy at least what fat and sugar carry)."""
    facts = {"other_fat": other_fat, "sat": sat, "added": added, "sodium": sodium, "trans": trans}
    kcal = (other_fat + sat + trans) * 9 + added * 4 + energy_beyond  # lowering a part leaves it enough

    def label(values: dict[str, float]) -> Product:
        fat = values["other_fat"] + values["sat"] + values["trans"]
        return product(kind, kcal=kcal, fat=fat, sat=values["sat"], added=values["added"], sodium=values["sodium"],
                       trans=values["trans"])  # fmt: skip

    before = evaluate("x", label(facts), level, BOTH)
    lowered = {**facts, which: facts[which] * cut}
    after = evaluate("x", label(lowered), level, BOTH)
    if before.allowed:
        assert after.allowed, (which, facts, lowered, after.violations)
    assert {v.rule for v in after.violations} <= {v.rule for v in before.violations}


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ("", "--rules: give at least one rule set; known: tpe-no-bottled-water, tw-moe-2016"),
        (" , ", "--rules: give at least one rule set"),
        ("tw-moe-2016,tw-moe-2016", "--rules: rule set 'tw-moe-2016' is listed twice"),
    ],
)
def test_rules_check_needs_each_rule_set_once(rules: str, reason: str) -> None:
    """`--rules ""` printed every product "allowed" against no rules at all, exit 0; a machine config refuses it."""
    out = subprocess.run([VENDING, "rules", "check", "--rules", rules], capture_output=True, text=True)
    assert out.returncode == 2 and reason in out.stderr and "allowed" not in out.stdout, out.stderr + out.stdout


def test_rules_check_reads_a_school_s_own_rule_set_from_its_file_as_a_machine_config_does(tmp_path: Path) -> None:
    """`--rules ours.yaml` was "unknown rule set" where a machine config takes it: a school's own rules went
    untested until a machine ran on them. Two files of one rule set applied its rules twice."""
    packaged = (CONFIGS / "rules" / "tw-moe-2016.yaml").read_text()
    (tmp_path / "ours.yaml").write_text(packaged.replace("id: tw-moe-2016", "id: our-school"))
    (tmp_path / "copy.yaml").write_text(packaged.replace("id: tw-moe-2016", "id: our-school"))

    def check(rules: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([VENDING, "rules", "check", "--rules", rules], capture_output=True, text=True,
                              cwd=tmp_path)  # fmt: skip

    ours = check("ours.yaml,tpe-no-bottled-water")
    assert ours.returncode == 1 and "tea-green-sweetened-300      REFUSED" in ours.stdout, ours.stderr
    assert "D1: " in ours.stdout and "(junior_high; ours.yaml, tpe-no-bottled-water)" in ours.stdout
    for rules, reason in (
        ("missing.yaml", f"--rules: rule set file 'missing.yaml' not found ({tmp_path / 'missing.yaml'})"),
        ("ours.yaml,copy.yaml", "--rules: 'copy.yaml' is rule set 'our-school', which is listed already"),
    ):
        out = check(rules)
        assert out.returncode == 2 and reason in out.stderr and not out.stdout, out.stderr


def test_a_drink_that_does_not_say_its_kind_is_refused_not_read_as_a_snack(tmp_path: Path) -> None:
    """Without `kind` a drink was read as a snack, outside every drink rule: `rules check` printed mineral
    water "allowed" for a Taipei junior high, and a machine sold it."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "products:\n"
        "  water-600:\n"
        "    name: {zh-TW: 礦泉水, en: Mineral water}\n"
        "    category: drink\n"
        "    price: 20\n"
        "    beverage: {volume_ml: 600, bottled_water: true}\n",
        encoding="utf-8",
    )
    out = subprocess.run([VENDING, "rules", "check", str(catalog)], capture_output=True, text=True)
    assert out.returncode == 2 and "products.water-600: kind: a drink (its category is drink) must say its kind" in (
        out.stderr
    ), out.stderr
    assert "allowed" not in out.stdout
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("    price:", "    kind: mineral_water\n    price:"))
    out = subprocess.run([VENDING, "rules", "check", str(catalog)], capture_output=True, text=True)
    assert out.returncode == 1 and "TPE-W1: mineral water may not be sold here" in out.stdout, out.stdout
