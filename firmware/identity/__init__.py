"""Who a card is to each party: per-term pseudonyms and the school's term keys (never published)."""

from firmware.identity.pseudonym import Pseudonymizer, normalise_uid

__all__ = ["Pseudonymizer", "normalise_uid"]
