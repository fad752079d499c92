"""The one exception type the CLI turns into `ERROR: <message>` and exit code 1.

Everything a user can cause (bad config, unknown key, server refusal, unreachable server) is raised as a
`CliError` with a message meant to be read as is, so the entry point never has to print a traceback.
"""

from __future__ import annotations


class CliError(Exception):
    """A failure to report on one line; `message` is shown verbatim after `ERROR: `."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ClientError(CliError):
    """The server refused a request or could not be reached; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
