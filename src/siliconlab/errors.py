"""User-facing errors: the CLI prints them as one line and exits non-zero, never with a traceback."""


class SiliconlabError(Exception):
    """A problem the user can fix (bad input, missing artifact); `exit_code` follows the CLI convention."""

    exit_code = 1


class UsageError(SiliconlabError):
    """Unknown model/unit names and similar bad arguments: exit 2, like argument-parsing errors."""

    exit_code = 2
