"""Adapters behind the controller's ``Payment`` port that keep money outside the machine's books.

The machine's own wallet lives with the books (``firmware.journal.wallet``); the purse on the card
is here (``card``). The node builds the one a machine config's ``payment: {mode: ...}`` names.
"""
