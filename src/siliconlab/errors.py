"""User-facing errors: the CLI prints them as one line and exits non-zero, never with a traceback."""


class SiliconlabError(Exception):
    """A problem the user can fix (bad input, missing artifact); `exit_code` follows the CLI convention."""

    exit_code = 1


class UsageError(SiliconlabError):
    """Unknown model/unit names and similar bad arguments: exit 2, like argument-parsing errors."""

    exit_code = 2


class ServeError(SiliconlabError):
    """The server refused or failed a request; `status` is Triton's (e.g. '400', 'StatusCode.UNAVAILABLE').

    Here rather than in client.py so both of the client's transports (client.py, client_stream.py) raise it."""

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status
