"""Launchers for the real servers the runs and tests talk to: the embedded broker, Mosquitto, PostgreSQL."""
