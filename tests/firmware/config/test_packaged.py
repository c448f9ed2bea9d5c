"""The shipped configs come from the package (a wheel or a checkout); a school's own rule set is a file."""

from __future__ import annotations

import shutil

import pytest

from firmware.config.machine import load_machine
from firmware.config.packaged import configs_dir, contract_file
from firmware.errors import InputError
from tests.conftest import CONFIGS, ROOT


def test_the_packaged_configs_are_the_repository_s_in_a_checkout():
    assert configs_dir().resolve() == CONFIGS.resolve()
    assert contract_file().resolve() == (ROOT / "docs" / "asyncapi.yaml").resolve()


def test_a_rules_entry_naming_a_file_loads_the_school_s_own_rule_set(tmp_path):
    shutil.copy(CONFIGS / "products" / "campus.yaml", tmp_path / "catalog.yaml")
    shutil.copy(CONFIGS / "rules" / "tw-moe-2016.yaml", tmp_path / "our-rules.yaml")
    text = (CONFIGS / "machines" / "demo.yaml").read_text()
    text = text.replace("catalog: ../products/campus.yaml", "catalog: catalog.yaml")
    text = text.replace("rules: [tw-moe-2016, tpe-no-bottled-water]", "rules: [our-rules.yaml, tpe-no-bottled-water]")
    (tmp_path / "machine.yaml").write_text(text)
    setup = load_machine(tmp_path / "machine.yaml")
    assert [ruleset.id for ruleset in setup.rulesets] == ["tw-moe-2016", "tpe-no-bottled-water"]
    (tmp_path / "machine.yaml").write_text(text.replace("our-rules.yaml", "missing.yaml"))
    with pytest.raises(InputError, match=r"machine.yaml:8: rules.0: rule set file 'missing.yaml' not found"):
        load_machine(tmp_path / "machine.yaml")
