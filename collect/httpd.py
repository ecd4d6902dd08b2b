"""The HTTP server of `collect serve`: waitress, held to account for slow clients.

waitress reads every request in full on its event loop before a worker thread sees it, so
a slow client costs a connection, never a thread, and answers are sent from buffers (a file
by the file wrapper), so a slow reader costs no thread either. What is left to bound:

- connections: many, polled (`select` stops at 1,024 descriptors), so that hundreds of
  trickling clients do not reach the limit;
- a request's head: it must arrive whole within HEADER_TIMEOUT_S of its first byte, or the
  connection is closed; a client that sends one header line every few seconds (slowloris)
  otherwise keeps it for ever, since every line counts as activity;
- idle connections: closed after `channel_timeout`.

Errors that waitress answers itself (a body over the limit, a malformed request) are JSON in
the API's one shape, like every other error.
"""

import json
import sys
import time
from wsgiref.types import WSGIApplication

if sys.platform != "win32":  # Windows has no descriptor limits (nor this module)
    import resource

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

HEADER_TIMEOUT_S = 10
IDLE_TIMEOUT_S = 60
CHECK_EVERY_S = 1
MAX_CONNECTIONS = 4000
SPARE_DESCRIPTORS = 200  # for the database, uploads and exports of the threads


class JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"detail": f"{error.reason}: {error.body}".strip()}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class TimedRequestParser(HTTPRequestParser):
    """Knows when its first byte came."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()


class Channel(HTTPChannel):
    parser_class = TimedRequestParser
    error_task_class = JsonErrorTask


class Server(TcpWSGIServer):
    channel_class = Channel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        too_old = time.monotonic() - HEADER_TIMEOUT_S
        for channel in list(self.active_channels.values()):
            request = channel.request
            if request is not None and not request.headers_finished and request.started < too_old:
                channel.will_close = True  # closed at the loop's next turn


def create_server(
    application: WSGIApplication, *, host: str, port: int, threads: int, max_body: int
) -> "Server | MultiSocketServer":
    """What waitress.create_server makes, with the classes above."""
    adjustments = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="collect",
        max_request_body_size=max_body,
        connection_limit=_connection_limit(),
        channel_timeout=IDLE_TIMEOUT_S,
        cleanup_interval=CHECK_EVERY_S,
        asyncore_use_poll=True,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    sockets: dict[int, object] = {}  # asyncore's map: descriptor to channel
    servers = [
        Server(application, sockets, dispatcher=dispatcher, adj=adjustments, sockinfo=sockinfo)
        for sockinfo in adjustments.listen
    ]
    if len(servers) == 1:
        return servers[0]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(sockets, adjustments, listening, dispatcher)


def _connection_limit() -> int:
    """As many connections as the process may have descriptors for, up to MAX_CONNECTIONS;
    the soft limit is raised to the hard one first (often 1,024 of 1,048,576)."""
    if sys.platform == "win32":  # no descriptor limits to raise
        return 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(100, min(MAX_CONNECTIONS, soft - SPARE_DESCRIPTORS))
