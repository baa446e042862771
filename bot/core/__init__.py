"""The leaf vocabulary every layer shares: typed config, the inbound Event, the injected
clock, the working-day calendar and time helpers. It imports nothing else of ours, so any
layer may import it without creating a cycle (the import contracts in pyproject.toml hold
this line)."""
