"""The calendar and the clock-driven jobs (09:30 prompts, Friday pulse …)."""
