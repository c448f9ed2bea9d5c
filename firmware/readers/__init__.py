"""Card readers in layers: transport (pyserial URL) -> pure framer -> driver (frames -> CardTap).

Drivers are chosen by name from ``registry.DRIVERS`` with lazy imports, like python-can's interfaces.
"""
