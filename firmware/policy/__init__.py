"""Sales policies behind the ``SalesPolicy`` port: profiles, lockouts, and (later) campus food rules."""

from firmware.policy.chain import PolicyChain, build_policy

__all__ = ["PolicyChain", "build_policy"]
