"""What can go wrong, as types: each class is one kind of failure with its own exit code.

The CLI prints ``casreg: error: <message>`` (one line) and exits with the class's code; code
that handles errors decides by type, never by message text. Exit codes (also in the README):

====  ====================  =====================================================================
code  class                 meaning
====  ====================  =====================================================================
1     CasregError           any other failure caused by input or environment
2     InvalidInput          a malformed argument, name, URL or value (also typer's usage errors)
3     NotFound              an unknown ref, version, object, path or remote
4     Conflict              a compare-and-swap lost, a name exists, a non-fast-forward update
5     Corrupt               stored or received bytes do not match their hash or do not decode
6     RemoteUnreachable     a remote cannot be reached or does not answer in time
7     RemoteRefused         a remote answered but refused (authentication, permission, full)
8     RemoteError           a remote answered with something unusable (lacks an object, garbage)
9     HostileInput          outside data that would do harm (a path leaving its directory, a bomb)
10    StoreUnavailable      no store here, or it cannot be opened, written or locked
70    (unexpected)          a bug: a traceback is printed with --debug only
130   (interrupted)         Ctrl-C
====  ====================  =====================================================================
"""

from __future__ import annotations


class CasregError(Exception):
    """A failure caused by input or environment, reported to the user as one line."""

    exit_code = 1


class InvalidInput(CasregError):
    """The user's input (an argument, a name, a URL, a value) is malformed."""

    exit_code = 2


class InvalidURL(InvalidInput):
    """A remote URL that cannot be used: bad syntax, unknown scheme or query key, missing host."""


class NotFound(CasregError):
    """An unknown ref, version, object, path or remote."""

    exit_code = 3


class Conflict(CasregError):
    """The operation would overwrite something that is not what the caller expected."""

    exit_code = 4


class RefConflict(Conflict):
    """A compare-and-swap ref update lost: the ref is not where the caller expected it."""


class NonFastForward(Conflict):
    """Moving a ref there would drop versions from its history (needs --force)."""


class AlreadyExists(Conflict):
    """A name, store or destination that must be new already exists."""


class Corrupt(CasregError):
    """Stored or received bytes do not match their hash or cannot be decoded."""

    exit_code = 5


class RemoteError(CasregError):
    """A remote answered with something unusable (it lacks an object, its data does not parse)."""

    exit_code = 8


class RemoteUnreachable(RemoteError):
    """A remote cannot be reached, or does not answer within its timeout."""

    exit_code = 6


class RemoteRefused(RemoteError):
    """A remote answered but refused the request (authentication, permission, read-only, full)."""

    exit_code = 7


class HostileInput(CasregError):
    """Data from outside the store that would do harm if used as it is."""

    exit_code = 9


class UnsafePath(HostileInput):
    """A path built from stored or received data would leave its directory."""


class HostileArchive(HostileInput):
    """An archive that is larger, more compressed or stranger than the import limits allow."""


class StoreUnavailable(CasregError):
    """No store here, or it cannot be opened, written or locked."""

    exit_code = 10


EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
