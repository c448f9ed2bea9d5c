"""Stored value on the card: the MIFARE Classic 1K format and the campus purse laid out on it."""
