"""Measurements of what the parties could learn by combining what they receive."""
