"""What the geoportal processes share: input errors, CRSs, reading stored layers, caches.

Coordinates in process inputs and outputs are always in x/y order: easting/northing for the
projected CRSs and longitude/latitude for EPSG:4326, CRS84 and EPSG:3824 (the order GeoJSON
uses), whatever axis order the EPSG definition states.

TWD67 (EPSG:3828) is related to TWD97 only through EPSG:15487 ("TWD67 / TM2 zone 121 to TWD97 /
TM2 zone 121 (1)", an offset of +828.589 m / -206.915 m, accuracy 7 m, Taiwan main island).
PROJ has no datum transformation from TWD67 to WGS 84 and would pick a "ballpark" operation about
830 m off, so every conversion to or from EPSG:3828 goes through EPSG:3826 with that operation,
as ``ingest.crs`` does. EPSG:3827 (TWD67 / TM2 zone 119, Penghu) has no documented
transformation at all in the EPSG dataset; it is refused with a message saying so, as ingest
refuses it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from pygeoapi.process.base import ProcessorExecuteError
from pyproj import Transformer

LOGGER = logging.getLogger(__name__)

#: Supported CRSs: canonical code → (zh-TW name, English name).
CRS_NAMES: dict[str, tuple[str, str]] = {
    "EPSG:3826": ("TWD97 二度分帶 121 (臺灣本島)", "TWD97 / TM2 zone 121"),
    "EPSG:3825": ("TWD97 二度分帶 119 (澎湖、金門、馬祖)", "TWD97 / TM2 zone 119"),
    "EPSG:3828": ("TWD67 二度分帶 121", "TWD67 / TM2 zone 121"),
    "EPSG:3827": ("TWD67 二度分帶 119", "TWD67 / TM2 zone 119"),
    "EPSG:4326": ("WGS 84 經緯度", "WGS 84 lon/lat"),
    "EPSG:3824": ("TWD97 經緯度", "TWD97 lon/lat"),
    "EPSG:3857": ("Web Mercator", "WGS 84 / Pseudo-Mercator"),
}

#: The CRS names a request may use, besides the codes above.
_ALIASES = {
    "CRS84": "EPSG:4326",
    "CRS:84": "EPSG:4326",
    "OGC:CRS84": "EPSG:4326",
    "WGS84": "EPSG:4326",
}

#: The CRS for metric work (distances, point-in-polygon near edges).
METRIC = "EPSG:3826"
STORE = "EPSG:4326"

#: The one EPSG operation between TWD67 and TWD97 (see the module docstring).
TWD67_OPERATION = "EPSG:15487"

#: JSON schema of a CRS input (shown in the OpenAPI document).
CRS_SCHEMA: dict[str, Any] = {
    "type": "string",
    "default": "EPSG:4326",
    "examples": ["EPSG:3826", "EPSG:4326", "CRS84", "http://www.opengis.net/def/crs/EPSG/0/3826"],
}

#: JSON schema of a point ([x, y]).
POINT_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
}


class ProcessInputError(ProcessorExecuteError):
    """A process input that cannot be used: answered with HTTP 400 and the message."""

    http_status_code = HTTPStatus.BAD_REQUEST
    ogc_exception_code = "InvalidParameterValue"

    def __init__(self, msg: str) -> None:
        super().__init__(msg, user_msg=msg)


class _QuietClientErrors(logging.Filter):
    """Drop pygeoapi's traceback records for rejected inputs (they are answered with 400)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and isinstance(record.msg, BaseException):
            exc = record.msg
        return not isinstance(exc, ProcessInputError)


for _name in ("pygeoapi.process.manager.base", "pygeoapi.process.manager.dummy"):
    logging.getLogger(_name).addFilter(_QuietClientErrors())


def bilingual(zh: str, en: str) -> dict[str, str]:
    """A pygeoapi i18n value: zh-TW first, English second."""
    return {"zh-TW": zh, "en": en}


#: The ``point`` and ``crs`` inputs of the processes that take one point.
POINT_INPUT: dict[str, Any] = {
    "title": bilingual("坐標", "Point"),
    "description": bilingual("[x, y]，x/y 順序", "[x, y], in x/y order"),
    "schema": POINT_SCHEMA,
    "minOccurs": 1,
    "maxOccurs": 1,
}
CRS_INPUT: dict[str, Any] = {
    "title": bilingual("坐標系統", "CRS"),
    "description": bilingual("點的坐標系統，預設 EPSG:4326", "The point's CRS (default EPSG:4326)"),
    "schema": CRS_SCHEMA,
    "minOccurs": 0,
    "maxOccurs": 1,
}


# -- inputs --------------------------------------------------------------------------------


def parse_crs(value: object, name: str = "crs") -> str:
    """The canonical code ("EPSG:3826") of a CRS input.

    Accepts "EPSG:3826", "3826", 3826, "CRS84", OGC URIs and URNs of the supported CRSs.

    Raises:
        ProcessInputError: an unsupported or malformed CRS, or EPSG:3827 (no datum shift).
    """
    if value is None:
        return STORE
    text = str(value).strip()
    upper = text.upper().rstrip("/")
    code = None
    if upper in _ALIASES or upper.endswith("/CRS84"):
        code = "EPSG:4326"
    else:
        tail = upper.replace("::", ":").replace("/", ":").split(":")[-1]
        if tail.isdigit():
            code = f"EPSG:{int(tail)}"
    if code not in CRS_NAMES:
        known = ", ".join([*CRS_NAMES, "CRS84"])
        raise ProcessInputError(f"{name} {text!r} is not supported; use one of {known}")
    if code == "EPSG:3827":
        raise ProcessInputError(
            f"{name} EPSG:3827 (TWD67 / TM2 zone 119, Penghu) has no documented datum "
            "transformation to TWD97 in the EPSG dataset, and a plain reprojection would be "
            "hundreds of metres off; convert the data to TWD97 (EPSG:3825) first"
        )
    return code


def points_array(value: object, name: str, max_points: int) -> np.ndarray:
    """An (n, 2) float array from a point [x, y] or a list of points.

    Raises:
        ProcessInputError: not numbers, not pairs, not finite, or more than ``max_points``.
    """
    if not isinstance(value, list) or not value:
        raise ProcessInputError(f"{name} must be [x, y] or a list of [x, y] pairs")
    rows = value if isinstance(value[0], list) else [value]
    if len(rows) > max_points:
        raise ProcessInputError(f"{name} holds {len(rows)} points; at most {max_points} allowed")
    for i, row in enumerate(rows):
        if (
            not isinstance(row, list)
            or len(row) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
        ):
            raise ProcessInputError(f"{name}[{i}] must be a pair of numbers [x, y], got {row!r}")
    arr = np.asarray(rows, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ProcessInputError(f"{name} holds a coordinate that is not a finite number")
    return arr


def point_input(data: dict, name: str = "point") -> np.ndarray:
    """The one point ``data[name]`` as an array [x, y] (required).

    Raises:
        ProcessInputError: missing or not a pair of finite numbers.
    """
    if name not in data:
        raise ProcessInputError(f"input {name!r} is required: [x, y]")
    value = data[name]
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise ProcessInputError(f"{name} must be one point [x, y], not a list of points")
    return points_array(value, name, 1)[0]


def number_input(
    data: dict, name: str, default: float | None, lo: float, hi: float, integer: bool = False
) -> float:
    """A bounded number input (``default`` when absent).

    Raises:
        ProcessInputError: missing (without default), not a number, or outside [lo, hi].
    """
    value = data.get(name, default)
    if value is None:
        raise ProcessInputError(f"input {name!r} is required")
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise ProcessInputError(f"{name} must be {kind}, got {value!r}")
    if not lo <= value <= hi:
        raise ProcessInputError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return int(value) if integer else float(value)


def check_inputs(data: object, known: Sequence[str]) -> dict:
    """``data`` as a dict whose keys are all known inputs.

    Raises:
        ProcessInputError: not an object, or an unknown input name.
    """
    if not isinstance(data, dict):
        raise ProcessInputError("inputs must be a JSON object")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ProcessInputError(
            f"unknown input(s) {', '.join(unknown)}; this process takes {', '.join(known)}"
        )
    return data


def geometry_input(value: object, name: str, crs: str) -> shapely.Geometry:
    """A valid shapely geometry in EPSG:3826 from a GeoJSON geometry in ``crs``.

    Raises:
        ProcessInputError: not a GeoJSON geometry, empty, or invalid after repair.
    """
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or "type" not in value:
        raise ProcessInputError(f"{name} must be a GeoJSON geometry object")
    try:
        geom = shapely.geometry.shape(value)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as err:
        raise ProcessInputError(f"{name} is not a valid GeoJSON geometry: {err}") from None
    if geom.is_empty:
        raise ProcessInputError(f"{name} is empty")
    coords = shapely.get_coordinates(geom)
    if not np.all(np.isfinite(coords)):
        raise ProcessInputError(f"{name} holds a coordinate that is not a finite number")
    geom = transform_geometry(geom, crs, METRIC)
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


# -- coordinate transformations ------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A chain of pyproj transformers between two supported CRSs (x/y order throughout)."""

    steps: tuple[Transformer, ...]

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transform coordinate arrays."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        for step in self.steps:
            x, y = step.transform(x, y)
        return np.asarray(x, float), np.asarray(y, float)

    @property
    def description(self) -> str:
        """The operations applied, in order."""
        return " → ".join(s.description for s in self.steps) or "none (same CRS)"

    @property
    def accuracy(self) -> float | None:
        """The sum of the steps' stated accuracies in metres (None when one is unknown)."""
        values = [s.accuracy for s in self.steps]
        if any(v is None or v < 0 for v in values):
            return None
        return float(sum(values))


@lru_cache(maxsize=64)
def operation(source: str, target: str) -> Operation:
    """The transformation from ``source`` to ``target`` (codes from :func:`parse_crs`)."""
    if source == target:
        return Operation(())
    if "EPSG:3828" not in (source, target):
        return Operation((Transformer.from_crs(source, target, always_xy=True),))
    twd67 = Transformer.from_crs("EPSG:3828", METRIC, always_xy=True)
    steps: list[Transformer] = []
    if source == "EPSG:3828":
        steps.append(twd67)
    else:
        if source != METRIC:
            steps.append(Transformer.from_crs(source, METRIC, always_xy=True))
    if target == "EPSG:3828":
        steps.append(Transformer.from_crs(METRIC, "EPSG:3828", always_xy=True))
    elif target != METRIC:
        steps.append(Transformer.from_crs(METRIC, target, always_xy=True))
    return Operation(tuple(steps))


def transform_geometry(geom: shapely.Geometry, source: str, target: str) -> shapely.Geometry:
    """``geom`` (or an array of geometries) from ``source`` to ``target``, 2-D."""
    if source == target:
        return shapely.force_2d(geom)
    op = operation(source, target)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = op.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(shapely.force_2d(geom), fn)


def metric_point(xy: np.ndarray, crs: str) -> shapely.Point:
    """A point given in ``crs`` as an EPSG:3826 shapely point.

    Raises:
        ProcessInputError: the point has no position in EPSG:3826 (far outside its domain).
    """
    x, y = operation(crs, METRIC).transform(np.array([xy[0]]), np.array([xy[1]]))
    if not (np.isfinite(x[0]) and np.isfinite(y[0])):
        raise ProcessInputError(f"point {list(xy)} cannot be placed in {crs}")
    return shapely.Point(float(x[0]), float(y[0]))


def lonlat(geom: shapely.Geometry) -> list[float]:
    """[lon, lat] of an EPSG:3826 point."""
    x, y = operation(METRIC, STORE).transform(np.array([geom.x]), np.array([geom.y]))
    return [round(float(x[0]), 9), round(float(y[0]), 9)]


# -- stored layers -------------------------------------------------------------------------


def json_value(value: object) -> object:
    """A stored attribute value as JSON: numpy scalars as Python, dates as ISO 8601, NaN null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True)
class StoredFeatures:
    """Features read from a layer version's store (EPSG:4326 geometries).

    Attributes:
        fids: feature ids.
        geometries: shapely geometries (EPSG:4326), None where missing.
        fields: attribute names in store order.
        columns: one array per field.
    """

    fids: np.ndarray
    geometries: np.ndarray
    fields: tuple[str, ...]
    columns: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.fids)

    def column(self, name: str) -> np.ndarray:
        """The values of field ``name``."""
        return self.columns[self.fields.index(name)]

    def properties(self, i: int) -> dict[str, object]:
        """The attributes of feature ``i`` as JSON values."""
        return {f: json_value(c[i]) for f, c in zip(self.fields, self.columns, strict=True)}

    def subset(self, idx: np.ndarray) -> StoredFeatures:
        """The features at positions ``idx``."""
        return StoredFeatures(
            self.fids[idx], self.geometries[idx], self.fields, tuple(c[idx] for c in self.columns)
        )


def read_features(
    path: Path, bbox: tuple[float, float, float, float] | None = None
) -> StoredFeatures:
    """Features of a store GeoPackage, optionally only those whose envelope meets ``bbox``.

    GDAL answers the bbox through the GeoPackage R-tree.

    Raises:
        ProcessInputError: the store cannot be read (the layer's data is missing).
    """
    try:
        _meta, fids, wkb, data = pyogrio.raw.read(
            path, layer="features", bbox=bbox, return_fids=True
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
        raise ProcessInputError(f"the stored data of this layer cannot be read: {err}") from err
    geoms = shapely.from_wkb(wkb) if wkb is not None else np.full(len(fids), None, dtype=object)
    return StoredFeatures(
        np.asarray(fids), np.asarray(geoms, dtype=object), tuple(_meta["fields"]), tuple(data)
    )


class VersionCache:
    """Objects built once per stored layer version (versions are immutable files).

    Args:
        build: makes the object of one store path.
        size: versions kept (least recently used dropped first).
    """

    def __init__(self, build: Callable[[Path], Any], size: int = 8) -> None:
        self.build = build
        self.size = size
        self._lock = threading.Lock()
        self._building: dict[Path, threading.Lock] = {}
        self._items: OrderedDict[Path, Any] = OrderedDict()

    def get(self, path: Path) -> Any:
        """The object of ``path``, built on first use (one builder at a time per path)."""
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
            lock = self._building.setdefault(path, threading.Lock())
        with lock:
            with self._lock:
                if path in self._items:
                    return self._items[path]
            value = self.build(path)
            with self._lock:
                self._items[path] = value
                self._building.pop(path, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value


def layer_input(data: dict, name: str, layers: dict[str, str]) -> tuple[str, Path]:
    """(layer id, store path) of a layer-id input, from the processor's layer table.

    Raises:
        ProcessInputError: missing, not a string, or not a published vector layer.
    """
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ProcessInputError(f"input {name!r} is required: a layer id")
    if value not in layers:
        raise ProcessInputError(
            f"{name} {value!r} is not a published vector layer; see /ogc/collections"
        )
    return value, Path(layers[value])
