"""Database: tables, connections, migrations and the group-commit writer."""
