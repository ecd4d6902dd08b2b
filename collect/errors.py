"""The one family of errors that services raise for refused actions; the API maps each once."""


class CollectError(Exception):
    status_code = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(CollectError):
    status_code = 400


class NotFound(CollectError):
    status_code = 404


class Conflict(CollectError):
    """The action does not fit the job's current state; `details` names that state."""

    status_code = 409


class TooLarge(CollectError):
    status_code = 413


class Gone(CollectError):
    status_code = 410


class Forbidden(CollectError):
    status_code = 403


class Locked(CollectError):
    """Another request is writing to the same resource right now; try again shortly."""

    status_code = 423


class ChecksumMismatch(CollectError):
    """tus's own status for a chunk whose checksum does not match."""

    status_code = 460


class Unavailable(CollectError):
    """Something the service needs (the database) cannot be reached now; retry later."""

    status_code = 503


class InsufficientStorage(CollectError):
    """The server's disk is full: nothing of the request was kept; retry later."""

    status_code = 507


class InternalError(CollectError):
    """A bug: logged with its traceback; the client learns only that it happened."""

    status_code = 500


class TooManyJobs(CollectError):
    """The user has as many active jobs as allowed (COLLECT_MAX_ACTIVE_JOBS)."""

    status_code = 429
