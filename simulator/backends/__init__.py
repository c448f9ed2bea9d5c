"""Backend stubs for the vendor (what was sold, by pseudonym) and the card issuer (per-card daily totals)."""
