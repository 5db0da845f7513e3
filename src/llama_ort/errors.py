"""The one error type users can hit.

Anything raised as `LlamaOrtError` is bad input or a missing requirement: the command line prints its
message on one line and exits with code 2. Every other exception is a bug and keeps its traceback.
"""


class LlamaOrtError(Exception):
    """A problem the user can fix: the message names the file or field and what to do."""


def fail(where: object, what: str) -> LlamaOrtError:
    """Build the error for `where` (a path, field or option): `raise fail(path, "is truncated")`."""
    return LlamaOrtError(f"{where}: {what}")
