"""Bench sessions: the Target contract, the session loop, result records, the results store, statistics and stability rules."""
