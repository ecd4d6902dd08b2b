"""The Redis transport of kombu, with one correction: a channel cut off from its broker
connection fails with a connection error, which every caller already handles.

Why (kombu and Celery 5.7.0, the newest releases): when the broker goes away, Celery's
consumer calls `Connection.collect()`, which detaches the transport from its connection
(`transport.client = None`) even when closing the default channel broke off half way (with
a free worker slot a BRPOP is pending, and reading its reply fails while Redis is down).
Celery 5.7 then closes the connection once more; that channel's `restore_unacked`, or a
later ack, builds a new Redis pool from `self.connection.client.hostname`, and the
AttributeError from None is no broker error to anyone: the worker exits with
"Unrecoverable error". Raised as a ConnectionError instead, kombu's close paths ignore it,
an ack is logged as not possible, and the consumer reconnects as it should.
"""

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the channel is detached from its broker connection")
        # kombu's stubs (celery-types) leave out this private method of the transport.
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
