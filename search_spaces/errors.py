"""The one root of every input error in the project (the CLI prints it as one line, exit status 2).

It lives here, in the lowest layer, so that ``search_spaces`` (which knows nothing of ``mobile_mote``)
and everything above it raise the same family; ``mobile_mote.errors`` re-exports it.
"""


class InputError(ValueError):
    """Bad input: the message says what was wrong and what is accepted."""


class ArchError(InputError):
    """A malformed or out-of-space architecture (or space configuration); the message says what is accepted."""
