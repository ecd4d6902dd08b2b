"""Database backends of Collect's own (see collect.db.sqlite)."""
