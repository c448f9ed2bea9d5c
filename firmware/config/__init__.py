"""Machine configs and product catalogs: YAML validated at load, with FILE:LINE errors."""

from firmware.config.catalog import Catalog, Product, load_catalog
from firmware.config.machine import MachineConfig, load_machine

__all__ = ["Catalog", "MachineConfig", "Product", "load_catalog", "load_machine"]
