"""The one exception type a user ever sees: a clear one-line message, printed by the CLI."""


class CasregError(Exception):
    """A failure caused by input or environment, reported to the user as one line."""

    exit_code = 1


class NotFound(CasregError):
    """An unknown ref, object or path."""


class RefConflict(CasregError):
    """A compare-and-swap ref update lost: the ref is not where the caller expected it."""


class Corrupt(CasregError):
    """Stored bytes do not match their hash or cannot be decoded."""


class InvalidInput(CasregError):
    """The user's input (a URL, a name, a value) is malformed."""


class InvalidURL(InvalidInput):
    """A remote URL that cannot be used: bad syntax, unknown scheme or query key, missing host."""
