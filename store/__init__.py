"""Persistence: tables, migrations, and the queries the handlers and jobs need."""
