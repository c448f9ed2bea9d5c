"""Dispenser adapters behind the ``Dispenser`` port; only ``virtual``: the motor board is the one part not emulated."""
