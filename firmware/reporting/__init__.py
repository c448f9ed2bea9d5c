"""Pseudonymous reporting: pseudonyms, message schemas, outbox publisher."""
