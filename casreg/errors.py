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


class UnsafePath(CasregError):
    """A path built from stored or received data would leave its directory."""


class HostileArchive(CasregError):
    """An archive to import breaks a limit (size, ratio, members) or holds a member that cannot be extracted safely."""
