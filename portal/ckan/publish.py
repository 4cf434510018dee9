"""``geoportal publish``: push the portal's datasets into any CKAN with ``ckanapi``.

Every public, active dataset of the portal (one per catalog layer, after bringing them in line
with the catalog, and the datasets that came in from agency catalog exports) becomes a dataset
of the target CKAN, with its organization, tags, extras and resources. Resource URLs are made
absolute with the portal's public base URL, so the target CKAN links back to this portal's
downloads and services.

Only actions that CKAN 2.10 and 2.11 both have, with their default schemas, are used:
``status_show``, ``organization_show``, ``organization_create``, ``package_show``,
``package_create`` and ``package_update``. Fields CKAN's default schema does not know (category,
update frequency, 主要欄位說明, English title, layer id, extent) travel as extras, which a
stock CKAN keeps and shows.

Idempotent: each published dataset carries the extra ``geoportal_digest``, a hash of what was
sent; a dataset whose digest on the target equals the new one is left alone, so a second run
changes nothing. Existing resources are matched by URL, keeping their ids on the target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ckanapi

from portal.ckan.model import Dataset, Organization

#: The extra holding the hash of what was published.
DIGEST_EXTRA = "geoportal_digest"

#: Dataset fields that go to a stock CKAN as extras (its default schema drops unknown keys).
EXTRA_FIELDS = (
    "title_en",
    "category",
    "update_frequency",
    "fields_description",
    "spatial",
    "layer_id",
)

USER_AGENT = "geoportal-publish (ckanapi)"


class PublishError(Exception):
    """The target CKAN cannot be used at all (unreachable, not a CKAN, a refused key)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one dataset: ``created``, ``updated``, ``unchanged`` or ``failed``."""

    name: str
    status: str
    message: str = ""


@dataclass
class PublishReport:
    """Outcomes of one run, and the organizations it created."""

    target: str
    outcomes: list[Outcome] = field(default_factory=list)
    organizations_created: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many datasets ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[Outcome]:
        """The datasets that could not be published."""
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> dict[str, Any]:
        """The run as JSON-ready data (for ``--json``)."""
        return {
            "target": self.target,
            "datasets": len(self.outcomes),
            **{s: self.count(s) for s in ("created", "updated", "unchanged", "failed")},
            "organizations_created": self.organizations_created,
            "failures": [{"name": o.name, "message": o.message} for o in self.failed],
        }


def _absolute(url: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{url}" if url.startswith("/") else url


def package_for(dataset: Dataset, owner_org: str, base_url: str) -> dict[str, Any]:
    """The ``package_create``/``package_update`` body of a dataset for a stock CKAN.

    Args:
        dataset: the portal's dataset.
        owner_org: the target organization's name.
        base_url: this portal's public root URL (relative resource URLs are made absolute).

    Returns:
        A package dict using CKAN's default schema only, with :data:`DIGEST_EXTRA` set.
    """
    extras = dict(dataset.extras)
    for name in EXTRA_FIELDS:
        value = getattr(dataset, name)
        if value:
            extras[name] = str(value)
    extras.pop(DIGEST_EXTRA, None)
    package: dict[str, Any] = {
        "name": dataset.name,
        "title": dataset.title,
        "notes": dataset.notes,
        "owner_org": owner_org,
        "private": False,
        "license_id": dataset.license_id,
        "url": _absolute(dataset.url, base_url) if dataset.url else "",
        "version": dataset.version,
        "author": dataset.author,
        "author_email": dataset.author_email,
        "maintainer": dataset.maintainer,
        "maintainer_email": dataset.maintainer_email,
        "tags": [{"name": t} for t in dataset.tags],
        "extras": [{"key": k, "value": v} for k, v in sorted(extras.items())],
        "resources": [
            {
                "name": r.name,
                "url": _absolute(r.url, base_url),
                "format": r.format,
                "description": r.description,
                "mimetype": r.mimetype or None,
                **({"size": r.size} if r.size is not None else {}),
            }
            for r in dataset.resources
        ],
    }
    digest = hashlib.sha256(
        json.dumps(package, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:20]
    package["extras"].append({"key": DIGEST_EXTRA, "value": digest})
    return package


def _digest(package: dict[str, Any]) -> str | None:
    for extra in package.get("extras") or []:
        if extra.get("key") == DIGEST_EXTRA:
            return extra.get("value")
    return None


class Publisher:
    """Publishes datasets into one CKAN.

    Args:
        ckan: the target, a ``ckanapi.RemoteCKAN`` (or any ckanapi client).
        base_url: this portal's public root URL.
        organization: put every dataset into this existing organization instead of each
            dataset's own (for a key that may not create organizations).
    """

    def __init__(self, ckan: Any, base_url: str, organization: str | None = None) -> None:
        self.ckan = ckan
        self.base_url = base_url
        self.organization = organization
        self._orgs: dict[str, str] = {}  # our organization name → the target's

    def check(self) -> str:
        """The target's CKAN version (``status_show``).

        Raises:
            PublishError: the target does not answer like a CKAN.
        """
        try:
            status = self.ckan.action.status_show()
        except (ckanapi.CKANAPIError, OSError, ValueError) as err:
            raise PublishError(f"{self.ckan.address} does not answer as a CKAN: {err}") from err
        return str(status.get("ckan_version", "?"))

    def organization_for(self, org: Organization, report: PublishReport) -> str:
        """The target organization of ``org``'s datasets, created when missing."""
        if self.organization:
            return self.organization
        if org.name in self._orgs:
            return self._orgs[org.name]
        try:
            found = self.ckan.action.organization_show(id=org.name)
        except ckanapi.NotFound:
            found = self.ckan.action.organization_create(
                name=org.name,
                title=org.title,
                description=org.description,
                image_url=org.image_url,
                extras=[{"key": "title_en", "value": org.title_en}] if org.title_en else [],
            )
            report.organizations_created.append(org.name)
        self._orgs[org.name] = found["name"]
        return found["name"]

    def publish_one(self, dataset: Dataset, org: Organization, report: PublishReport) -> Outcome:
        """Create, update or leave one dataset on the target."""
        try:
            package = package_for(dataset, self.organization_for(org, report), self.base_url)
            try:
                current = self.ckan.action.package_show(id=dataset.name)
            except ckanapi.NotFound:
                self.ckan.action.package_create(**package)
                return Outcome(dataset.name, "created")
            if current.get("state") == "active" and _digest(current) == _digest(package):
                return Outcome(dataset.name, "unchanged")
            by_url = {r.get("url"): r.get("id") for r in current.get("resources") or []}
            for resource in package["resources"]:
                if by_url.get(resource["url"]):
                    resource["id"] = by_url[resource["url"]]
            package["id"] = current["id"]
            package["state"] = "active"
            self.ckan.action.package_update(**package)
            return Outcome(dataset.name, "updated")
        except ckanapi.ValidationError as err:
            return Outcome(dataset.name, "failed", f"validation: {err.error_dict}")
        except ckanapi.NotAuthorized as err:
            return Outcome(dataset.name, "failed", f"not authorized: {err}")
        except ckanapi.CKANAPIError as err:
            return Outcome(dataset.name, "failed", str(err))

    def publish(
        self,
        datasets: Iterable[Dataset],
        organizations: dict[str, Organization],
        advance: Callable[[Outcome], None] = lambda _o: None,
    ) -> PublishReport:
        """Publish every dataset, calling ``advance`` after each (for a progress bar)."""
        report = PublishReport(self.ckan.address)
        for dataset in datasets:
            org = organizations.get(dataset.owner_org) or Organization(
                id="", name=dataset.owner_org, title=dataset.owner_org
            )
            outcome = self.publish_one(dataset, org, report)
            report.outcomes.append(outcome)
            advance(outcome)
        return report


def publishable(datasets: Iterable[Dataset]) -> list[Dataset]:
    """The datasets a run publishes: public and active, by name."""
    return sorted(
        (d for d in datasets if not d.private and d.state == "active"), key=lambda d: d.name
    )


def remote(url: str, api_key: str | None) -> Any:
    """A ``ckanapi.RemoteCKAN`` for ``url`` with this tool's user agent."""
    return ckanapi.RemoteCKAN(url.rstrip("/"), apikey=api_key, user_agent=USER_AGENT)
