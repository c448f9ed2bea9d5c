"""Card readers in layers: transport (pyserial URL) -> pure framer -> chip commands -> driver policy -> CardTap.

Each protocol is declared once in ``registry.PROTOCOLS``; drivers are imported by name when opened,
like python-can's interfaces.
"""
