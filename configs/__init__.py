"""The shipped configs (machines, catalog, food-rule sets, scenarios).

Installed as the data package ``vending_configs`` (pyproject.toml), read with importlib.resources.
"""
