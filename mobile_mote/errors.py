"""Input problems a user can fix: printed by the CLI as one line, exit status 2.

One root for the whole project: ``InputError`` (defined with the spaces, the lowest layer);
``ArchError`` (a malformed architecture) is a subclass of it.
"""
from search_spaces.errors import ArchError, InputError

__all__ = ["ArchError", "InputError"]
