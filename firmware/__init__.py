"""What would run on the vending machine: controller, policy, journal, readers, reporting.

Nothing here imports from ``simulator``; the simulator plugs virtual hardware into the ports.
"""
