"""The explicit action registry: name → function, schema (validators) and auth function.

An action is ``function(context, data) -> result``: ``data`` has been validated by the action's
schema first (a field → validators mapping, as CKAN's navl schemas) and the action's auth
function has allowed the caller. Nothing becomes an action by being defined: only what
:data:`portal.ckan.actions.ACTIONS` lists.

Validators take the value (or :data:`MISSING`) and return the cleaned value, or raise
:class:`Invalid` with CKAN's message; :func:`validate` collects the messages per field into a
:class:`~portal.ckan.errors.ValidationError` (409).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from portal.ckan.errors import ValidationError

if TYPE_CHECKING:
    from portal.ckan.api import Portal
    from portal.ckan.auth import Caller
    from portal.ckan.store import PortalStore


class _Missing:
    """The value of a field the client did not send."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Invalid(Exception):
    """A validator's complaint about one value (CKAN's message)."""


class StopOnError(Exception):
    """Raised by a validator to end the field's chain (the value stays as it is)."""


Validator = Callable[[Any], Any]
Schema = Mapping[str, Sequence[Validator]]


@dataclass(frozen=True)
class Upload:
    """A file posted with a multipart request (the field ``upload``)."""

    filename: str
    file: BinaryIO


@dataclass
class Context:
    """What an action runs with.

    Attributes:
        portal: the portal (store, search index cache, data home).
        caller: who is calling.
        base_url: the request's base URL, without a trailing slash.
        action: the action's name.
        files: uploaded files by field name.
    """

    portal: Portal
    caller: Caller
    base_url: str
    action: str
    files: Mapping[str, Upload] = field(default_factory=dict)

    @property
    def store(self) -> PortalStore:
        """The portal store."""
        return self.portal.store

    @property
    def home(self) -> Path:
        """The data home."""
        return self.portal.home


@dataclass(frozen=True)
class Action:
    """One registered action.

    Attributes:
        function: ``function(context, data) -> result``; its docstring is ``help_show``'s.
        schema: field → validators, run before the auth function.
        auth: ``auth(context, data)``; raises NotAuthorized (or NotFound) to refuse.
        read_only: CKAN's ``side_effect_free``: may be called with GET.
    """

    function: Callable[[Context, dict], Any]
    schema: Schema
    auth: Callable[[Context, dict], None]
    read_only: bool


# -- validators (CKAN's names and messages) ----------------------------------------------------


def ignore_missing(value: Any) -> Any:
    """Stop here when the field is missing or None (it is left out)."""
    if value is MISSING or value is None:
        raise StopOnError
    return value


def ignore_empty(value: Any) -> Any:
    """Stop here when the field is missing, None or empty."""
    if value is MISSING or value is None or value == "" or value == []:
        raise StopOnError
    return value


def not_empty(value: Any) -> Any:
    """The field must be given and not empty ("Missing value")."""
    if value is MISSING or value is None or value == "" or value == [] or value == {}:
        raise Invalid("Missing value")
    return value


def default(fallback: Any) -> Validator:
    """A missing or empty value becomes ``fallback``."""

    def _default(value: Any) -> Any:
        return fallback if value is MISSING or value is None or value == "" else value

    return _default


def unicode_safe(value: Any) -> Any:
    """Text: numbers become text; other non-text values are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("Must be a string")
    return str(value)


def int_validator(value: Any) -> int:
    """An integer ("Invalid integer")."""
    if isinstance(value, bool):
        raise Invalid("Invalid integer")
    try:
        number = float(value) if isinstance(value, float) else int(str(value).strip())
    except ValueError:
        raise Invalid("Invalid integer") from None
    if number != int(number):
        raise Invalid("Invalid integer")
    return int(number)


def natural_number_validator(value: Any) -> int:
    """An integer ≥ 0 ("Must be a natural number")."""
    number = int_validator(value)
    if number < 0:
        raise Invalid("Must be a natural number")
    return number


def limit_to(maximum: int) -> Validator:
    """Cap a number at ``maximum`` (CKAN caps ``rows`` at 1000)."""

    def _limit(value: int) -> int:
        return min(value, maximum)

    return _limit


def boolean_validator(value: Any) -> bool:
    """A boolean: true/yes/on/1 (any case) are true, other text false (as CKAN)."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "t", "y", "1", "on")


def one_of(choices: Sequence[str]) -> Validator:
    """The value must be one of ``choices``."""

    def _one_of(value: Any) -> Any:
        if value not in choices:
            raise Invalid(f"Value must be one of {list(choices)}")
        return value

    return _one_of


_NAME = re.compile(r"^[a-z0-9_-]*$")


def name_validator(value: Any) -> str:
    """A URL name: 2–100 of lower-case ASCII letters, digits, ``-`` and ``_`` (as CKAN)."""
    if not isinstance(value, str):
        raise Invalid("Names must be strings")
    if value in ("new", "edit", "search"):
        raise Invalid("That name cannot be used")
    if len(value) < 2:
        raise Invalid("Must be at least 2 characters long")
    if len(value) > 100:
        raise Invalid("Name must be a maximum of 100 characters long")
    if not _NAME.match(value):
        raise Invalid(
            "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"
        )
    return value


def json_list(value: Any) -> list:
    """A list, or JSON text of one (``facet.field='["tags"]'`` in a GET)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Invalid("Must be a JSON list") from None
    if not isinstance(value, list):
        raise Invalid("Must be a JSON list")
    return value


def json_object(value: Any) -> dict:
    """A dict, or JSON text of one (``filters`` of ``datastore_search`` in a GET)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Invalid("Must be a JSON object") from None
    if not isinstance(value, dict):
        raise Invalid("Must be a JSON object")
    return value


def list_of_strings(value: Any) -> list[str]:
    """A list of text items, from a list, JSON text or a comma-separated string."""
    if isinstance(value, str):
        value = json_list(value) if value.startswith("[") else value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid("Must be a list of strings")
    return [v.strip() for v in value if v.strip()]


def validate(data: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Run a schema over posted data.

    Fields the schema does not name are passed through unchanged (CKAN keeps them as
    ``__extras``); a field whose chain stops on :class:`StopOnError` keeps its value (or stays
    missing).

    Args:
        data: the request's data.
        schema: field → validators.

    Returns:
        The cleaned data.

    Raises:
        ValidationError: field → messages, for every field that failed.
    """
    out = dict(data)
    errors: dict[str, list[str]] = {}
    for name, validators in schema.items():
        value = data.get(name, MISSING)
        try:
            for check in validators:
                value = check(value)
        except StopOnError:
            pass
        except Invalid as exc:
            errors.setdefault(name, []).append(str(exc))
            continue
        if value is MISSING:
            out.pop(name, None)
        else:
            out[name] = value
    if errors:
        raise ValidationError(errors)
    return out
