"""Campus food rules as data (configs/rules/*.yaml) and the engine that reads a label against them."""

from firmware.policy.rules.engine import Verdict, Violation, evaluate
from firmware.policy.rules.ruleset import RuleSet, load_rulesets

__all__ = ["RuleSet", "Verdict", "Violation", "evaluate", "load_rulesets"]
