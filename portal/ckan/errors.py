"""Errors of the open-data portal, each carrying CKAN's error ``__type`` and HTTP status.

Actions and helpers raise these; ``portal.ckan.api`` turns them into CKAN's error envelope
(``{"success": false, "error": {"__type": ..., "message": ...}}``) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class CkanError(Exception):
    """Root of portal errors.

    Attributes:
        type: CKAN's ``__type`` of the error.
        status: the HTTP status it is answered with.
    """

    type = "Internal Server Error"
    status = 500

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(message)

    def error_dict(self) -> dict:
        """The ``error`` member of CKAN's envelope."""
        return {"__type": self.type, "message": self.message}


class BadRequest(CkanError):
    """The request itself is malformed (bad JSON, unknown action, bad parameter syntax)."""

    type = "Bad request"
    status = 400


class NotAuthorized(CkanError):
    """The caller may not do this (no token, a bad token, or not enough rights)."""

    type = "Authorization Error"
    status = 403


class NotFound(CkanError):
    """The dataset, resource, organization, group, tag or user does not exist (or is hidden)."""

    type = "Not Found Error"
    status = 404

    def __init__(self, message: str = "Not found") -> None:
        super().__init__(message)


class ValidationError(CkanError):
    """Input that breaks a schema: field → messages, as CKAN reports it (409)."""

    type = "Validation Error"
    status = 409

    def __init__(self, errors: Mapping[str, Sequence[str] | str]) -> None:
        self.errors = {k: [v] if isinstance(v, str) else list(v) for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))

    def error_dict(self) -> dict:
        """CKAN puts the field messages beside ``__type``."""
        return {"__type": self.type, **self.errors}


class SearchQueryError(CkanError):
    """A search query (``q``, ``fq``, ``sort``) that cannot be parsed (CKAN answers 400)."""

    type = "Search Query Error"
    status = 400

    def error_dict(self) -> dict:
        """CKAN's form: the reason under ``message``."""
        return {"__type": self.type, "message": f"Search Query is invalid: {self.message}"}
