"""What the machine tells a person who asks, in both display languages."""

from __future__ import annotations

from firmware.config.machine import MachineConfig
from firmware.messages import Message


def privacy_notice(config: MachineConfig) -> Message:
    """Who learns what from a purchase, and that the school -- not the vendor -- answers data requests."""
    return Message("privacy", {"contact": config.school.privacy_contact})
