"""The unit tier: no database at all. pytest-django refuses any query from a test that has not
asked for one; this refuses, at collection, a test here that asks."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent
DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_setup", "live_server"})


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE not in item.path.parents:
            continue
        asked = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if asked or item.get_closest_marker("django_db"):
            raise pytest.UsageError(
                f"{item.nodeid} asks for the database ({', '.join(sorted(asked)) or 'django_db'}):"
                " it belongs in tests/integration"
            )
