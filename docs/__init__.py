"""Installed as the data package ``vending_contract``.

The AsyncAPI contract (asyncapi.yaml) the backends check every report against, and the access export schema.
"""
