"""/readyz on the distributed stack names what is down: the broker, the database; and
answers ready again once it is back. The servers broken are the test's own."""

import pytest

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e


def readyz(stack):
    reply = stack.client().get("/readyz")
    return reply.status, reply.json()


def test_readyz_names_the_broker_while_it_is_down(own_redis, start_server):
    stack = start_server(CELERY_BROKER_URL=own_redis.url)
    assert readyz(stack) == (200, {"status": "ready"})

    own_redis.stop()
    status, body = readyz(stack)
    assert status == 503
    assert body["down"] == ["broker"]
    assert body["detail"] == "not ready: broker down"
    assert set(body["reasons"]) == {"broker"}
    assert stack.client().get("/healthz").status == 200  # alive all the same

    own_redis.start()
    wait_until(lambda: readyz(stack)[0] == 200, timeout=10, what="ready again")


def test_readyz_names_the_database_while_it_is_down(own_postgres, start_server):
    stack = start_server(DATABASE_URL=own_postgres.url("collect"))
    assert readyz(stack) == (200, {"status": "ready"})

    own_postgres.stop()
    status, body = readyz(stack)
    assert status == 503
    assert body["down"] == ["database"]
    assert stack.client().get("/healthz").status == 200

    own_postgres.start()
    wait_until(lambda: readyz(stack)[0] == 200, timeout=10, what="ready again")
