"""Platform-neutral messages and cards, and their per-platform renderings."""
