"""Read-only views of a machine state dir: what an operator or developer asks of a machine."""
