"""Talking to a Collect server: one session with the token, and every failure turned into a
ClientError with a one-line message."""

import os
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 60


class ClientError(Exception):
    """Printed as `collect: MESSAGE`; the command exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(ClientError):
    """Ctrl-C, with what it means for the work under way and how to pick it up again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=130)


class Api:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = (url or os.environ.get("COLLECT_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("COLLECT_TOKEN")
        if not token:
            raise ClientError(
                "no API token: set COLLECT_TOKEN or pass --token "
                "(the server's `collect token USERNAME` prints one)",
                exit_code=2,
            )
        self.headers = {"Authorization": f"Token {token}"}
        self.session = requests.Session()
        self.session.headers.update(self.headers)

    def endpoint(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params=params).json()

    def post(self, path: str, json: Any = None) -> Any:
        return self._send("POST", path, json=json).json()

    def download(self, path: str) -> requests.Response:
        return self._send("GET", path, stream=True)

    def _send(self, method: str, path: str, **options: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, self.endpoint(path), timeout=TIMEOUT_S, **options
            )
        except requests.ConnectionError:
            raise ClientError(f"cannot reach Collect at {self.url}") from None
        except requests.Timeout:
            raise ClientError(f"Collect at {self.url} did not answer in {TIMEOUT_S} s") from None
        check(response)
        return response


def resolve_task_id(api: Api, typed: str) -> str:
    """The whole id of the caller's task that `typed` names: the id itself or any unique
    start of it, as the server's `id_prefix` filter finds it."""
    text = typed.strip().lower()
    if not text or any(character not in "0123456789abcdef-" for character in text):
        raise ClientError(f"{typed!r} is not a task id (hex digits and -)", exit_code=2)
    page = api.get("tasks/", id_prefix=text)
    found = [job["task_id"] for job in page["results"]]
    if not found:
        raise ClientError(f"no task {typed}")
    if page["count"] > 1:
        shown = ", ".join(found[:5]) + (", …" if page["count"] > 5 else "")
        raise ClientError(
            f"{page['count']} tasks start with {typed}: {shown}; type more of the id",
            exit_code=2,
        )
    return str(found[0])


def check(response: requests.Response) -> None:
    """Raise the server's own reason for a refused request."""
    if response.ok:
        return
    if response.status_code in (401, 403):
        raise ClientError("the server refused the token: check COLLECT_TOKEN")
    raise ClientError(reason(response))


def reason(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail or f"the server answered {response.status_code} {response.reason}"
