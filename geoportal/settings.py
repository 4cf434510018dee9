"""The one settings object of geoportal.

Every key is declared here with its type, its default and a one-line description; values come
from (in order of precedence) explicit arguments such as the CLI's ``--home``, environment
variables prefixed ``GEOPORTAL_`` and a ``.env`` file in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExternalBasemap(BaseModel):
    """An optional external basemap the map composer offers (``GEOPORTAL_BASEMAPS``).

    Attributes:
        id: short id (a-z, 0-9, -) a map names it by.
        title: shown in the composer and the widget's attribution.
        type: "wmts" (a WMTS REST template in GoogleMapsCompatible: {TileMatrix}, {TileRow},
            {TileCol}) or "xyz" ({z}, {x}, {y}).
        url: the https tile URL template.
        attribution: the licence/attribution text drawn on the map.
    """

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    type: Literal["wmts", "xyz"]
    url: str = Field(pattern=r"^https?://[^\s/]+/\S*$")
    attribution: str = ""


class Settings(BaseSettings):
    """Runtime configuration shared by the CLI and the server."""

    model_config = SettingsConfigDict(
        env_prefix="GEOPORTAL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        default=Path("geoportal-home"),
        description="Data home: catalog, layer versions, tiles and caches live under it.",
    )
    host: str = Field(default="127.0.0.1", description="Address `geoportal serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `geoportal serve` uses.")
    public_url: str = Field(
        default="",
        description="The portal's public root URL, for links in feeds and published datasets "
        "(default http://HOST:PORT).",
    )
    workers: int = Field(default=1, ge=1, description="Server worker processes.")
    jobs: int = Field(
        default=0,
        ge=0,
        description="Parallel worker processes for ingest, tiles and sample (0 = one per core).",
    )
    log_level: str = Field(
        default="info",
        description="Log level: debug, info, warning, error (debug adds a line per request).",
    )
    catalog_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog database (default: SQLite in the data home; "
        "postgresql+psycopg://… for multi-server deployments).",
    )
    keep_versions: int = Field(default=5, ge=1, description="Versions kept per layer.")
    boundary_layers: str = Field(
        default="",
        description="Comma-separated ids of the boundary layers (district and village levels) "
        "for district lookup and extract; empty: found by their fields.",
    )
    address_layer: str = Field(
        default="",
        description="Id of the door-plate (門牌) layer for address lookup; empty: found by its "
        "fields.",
    )

    basemaps: list[ExternalBasemap] = Field(
        default_factory=list,
        description="External basemaps the map composer offers, as a JSON list of {id, title, "
        'type: "wmts"|"xyz", url, attribution} (none by default: maps work offline).',
    )

    @property
    def site_url(self) -> str:
        """The public root URL without a trailing slash (``public_url`` or http://host:port)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sample_dir(self) -> Path:
        """Where `geoportal demo` writes its synthetic corpus."""
        return self.home / "sample"


def load_settings(**overrides: object) -> Settings:
    """Build the settings, letting explicit non-None overrides win over the environment."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
