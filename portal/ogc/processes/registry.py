"""The process resources of the running pygeoapi config, built from the catalog snapshot.

Each process is a pygeoapi ``process`` resource whose ``processor`` definition carries what the
process needs from the snapshot (store paths of the layers it reads), so a new layer version
is picked up with the next config, like the collections.

Which layers the processes read:

- **Boundary layers** (district lookup, extract by district): polygon layers with a
  ``TOWNCODE`` and ``TOWNNAME`` field are district (鄉鎮市區) boundaries, those with a
  ``VILLCODE`` and ``VILLNAME`` field village (村里) boundaries; ``COUNTYNAME`` names the
  county (縣市). When several layers qualify for one level, the one with the most features wins
  (a complete layer over a legacy or partial one), then the newest version.
- **Door-plate layer** (address lookup and reverse): a point layer with the fields ``街路段``
  and ``號`` (``縣市``, ``鄉鎮市區``, ``村里``, ``巷``, ``弄``, ``完整地址`` used when present);
  the one with the most features wins.

Both choices can be named instead with the environment settings
``GEOPORTAL_BOUNDARY_LAYERS`` (comma-separated layer ids) and ``GEOPORTAL_ADDRESS_LAYER``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pygeoapi.plugin import load_plugin

from catalog.model import Layer, LayerVersion
from catalog.view import Snapshot
from geoportal.settings import load_settings

if TYPE_CHECKING:
    from portal.ogc.config import Site

#: Process id → dotted path of its processor class.
PROCESSORS: dict[str, str] = {
    "coordinate-conversion": "portal.ogc.processes.convert.CoordinateConversionProcessor",
    "district-lookup": "portal.ogc.processes.district.DistrictLookupProcessor",
    "spatial-query": "portal.ogc.processes.spatial.SpatialQueryProcessor",
    "address-lookup": "portal.ogc.processes.address.AddressLookupProcessor",
    "address-reverse": "portal.ogc.processes.reverse.AddressReverseProcessor",
    "extract": "portal.ogc.processes.extract.ExtractProcessor",
}

#: Fields of a boundary level: level → (code field, name field).
BOUNDARY_FIELDS = {"town": ("TOWNCODE", "TOWNNAME"), "village": ("VILLCODE", "VILLNAME")}
COUNTY_FIELD = "COUNTYNAME"
ADDRESS_FIELDS = ("街路段", "號")


@dataclass(frozen=True)
class Boundary:
    """A boundary layer of one level, as the processors receive it."""

    level: str
    layer: str
    path: str
    code_field: str
    name_field: str
    county_field: str | None

    def as_dict(self) -> dict:
        """The JSON form carried in the processor definition."""
        return dict(self.__dict__)


def _polygonal(version: LayerVersion) -> bool:
    return version.kind == "vector" and "Polygon" in version.geometry_type


def _level(version: LayerVersion) -> str | None:
    names = {f.name for f in version.fields}
    for level, needed in BOUNDARY_FIELDS.items():
        if set(needed) <= names:
            return level
    return None


def _boundary(level: str, layer: Layer, version: LayerVersion, site: Site) -> Boundary:
    code, name = BOUNDARY_FIELDS[level]
    county = COUNTY_FIELD if any(f.name == COUNTY_FIELD for f in version.fields) else None
    return Boundary(level, layer.id, str(site.home / version.path), code, name, county)


def boundary_layers(snapshot: Snapshot, site: Site, named: str = "") -> list[Boundary]:
    """The boundary layers, one per level (town first), by the rule in the module docstring."""
    pairs = snapshot.published()
    if named:
        wanted = [s.strip() for s in named.split(",") if s.strip()]
        pairs = [(lyr, v) for lyr, v in pairs if lyr.id in wanted]
    best: dict[str, tuple[Layer, LayerVersion]] = {}
    for layer, version in pairs:
        level = _level(version) if _polygonal(version) else None
        if level is None:
            continue
        held = best.get(level)
        rank = (version.feature_count, version.created)
        if held is None or rank > (held[1].feature_count, held[1].created):
            best[level] = (layer, version)
    return [_boundary(lvl, *best[lvl], site) for lvl in BOUNDARY_FIELDS if lvl in best]


def address_layer(snapshot: Snapshot, site: Site, named: str = "") -> dict | None:
    """The door-plate layer ({layer, path, fields}), or None when the catalog has none."""
    best: tuple[Layer, LayerVersion] | None = None
    for layer, version in snapshot.published():
        if named and layer.id != named:
            continue
        names = {f.name for f in version.fields}
        if version.kind != "vector" or "Point" not in version.geometry_type:
            continue
        if not set(ADDRESS_FIELDS) <= names:
            continue
        if best is None or version.feature_count > best[1].feature_count:
            best = (layer, version)
    if best is None:
        return None
    layer, version = best
    return {
        "layer": layer.id,
        "path": str(site.home / version.path),
        "fields": [f.name for f in version.fields],
    }


def vector_layers(snapshot: Snapshot, site: Site) -> dict[str, str]:
    """Layer id → store path of every published vector layer."""
    return {
        lyr.id: str(site.home / v.path) for lyr, v in snapshot.published() if v.kind == "vector"
    }


def process_resources(snapshot: Snapshot, site: Site) -> dict[str, dict]:
    """The ``process`` resources of the running config (a ``RESOURCE_BUILDERS`` entry)."""
    settings = load_settings()
    boundaries = [b.as_dict() for b in boundary_layers(snapshot, site, settings.boundary_layers)]
    layers = vector_layers(snapshot, site)
    options: dict[str, dict] = {
        "coordinate-conversion": {},
        "district-lookup": {"boundaries": boundaries},
        "spatial-query": {"layers": layers},
        "extract": {"layers": layers, "boundaries": boundaries},
    }
    door_plates = address_layer(snapshot, site, settings.address_layer)
    if door_plates is not None:
        options["address-lookup"] = {"address": door_plates}
        options["address-reverse"] = {"address": door_plates}
    return {
        pid: {"type": "process", "processor": {"name": PROCESSORS[pid], **opts}}
        for pid, opts in options.items()
    }


def _execute_schema(metadata: dict) -> dict:
    """The JSON schema of an execute request body for a process, from its input metadata."""
    properties, required = {}, []
    for name, spec in metadata["inputs"].items():
        schema = copy.deepcopy(spec["schema"])
        description = spec.get("description", "")
        if isinstance(description, dict):
            description = " / ".join(description.values())
        schema["description"] = description
        properties[name] = schema
        if spec.get("minOccurs", 1) >= 1:
            required.append(name)
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
            "response": {"type": "string", "enum": ["raw", "document"], "default": "raw"},
        },
    }


def add_input_schemas(oas: dict, config: dict) -> dict:
    """Put each geoportal process's input schemas into the OpenAPI document (in place).

    pygeoapi describes every execution request with the generic ``execute.yaml`` schema;
    this replaces it, for the processes registered here, with one naming the process's inputs
    and their JSON schemas, so clients generated from the OpenAPI document know them.

    Returns:
        ``oas``.
    """
    for pid, resource in config.get("resources", {}).items():
        if resource.get("type") != "process" or pid not in PROCESSORS:
            continue
        path = oas.get("paths", {}).get(f"/processes/{pid}/execution")
        if path is None:
            continue
        processor = load_plugin("process", resource["processor"])
        body = path["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = _execute_schema(processor.metadata)
    return oas
