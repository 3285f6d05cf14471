"""Errors raised by the bundle-format package.

The package stands alone (standard library only), so these do not derive from ``overair.errors``;
the server's error table (``overair.app``) answers :class:`InvalidBundle` with a 422.
"""

from __future__ import annotations


class InvalidBundle(Exception):
    """An uploaded or downloaded bundle is unusable.

    ``message`` is one sentence a person can act on: it names the offending archive entry (when
    there is one), says what is wrong with it and how to fix the archive.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAZipArchive(InvalidBundle):
    """The data is not a zip archive at all.

    The reference server accepts such an upload as a single-file bundle (its package hash is then
    the SHA-256 of the file); a caller that wants the same can catch this subclass specifically.
    """
