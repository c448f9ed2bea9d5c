"""The engine that reads a product's label against campus food rule sets (the sets are config data)."""

from firmware.policy.rules.engine import Verdict, Violation, evaluate

__all__ = ["Verdict", "Violation", "evaluate"]
