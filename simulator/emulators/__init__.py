"""Reader devices emulated on real pseudo-terminals: the drivers cannot tell them from hardware."""
