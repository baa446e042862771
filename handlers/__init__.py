"""Platform-neutral conversation logic: (event, context) → store changes + messages."""
