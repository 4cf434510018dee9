"""Errors of the ingest package: every message names the source and says what to do."""

from __future__ import annotations


class IngestError(Exception):
    """Root of ingest errors."""


class SourceRefused(IngestError):
    """A source that cannot be ingested as it is; nothing of it is published.

    Attributes:
        source: the file (or zip member) concerned.
        reason: a short stable code, e.g. "git-lfs-pointer", "crs-undecided", "zip-bomb".
        hint: what the agency or the manifest should change.
    """

    def __init__(self, source: str, reason: str, message: str, hint: str = "") -> None:
        self.source, self.reason, self.hint = source, reason, hint
        super().__init__(f"{source}: {message}" + (f" — {hint}" if hint else ""))


class ManifestError(IngestError):
    """A manifest or supply list that cannot be understood (names the file, entry and key)."""
