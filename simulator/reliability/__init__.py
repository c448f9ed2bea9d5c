"""Reliability harnesses: the crash matrix (a process killed at every crash point) and the outage soak."""
