"""KML and KMZ, parsed here: each top-level Folder is a sublayer.

GDAL's LIBKML driver turns Chinese ``<Data name="說明">`` attribute names into underscores,
so KML is read with a hardened XML parser (no entities, no network) and mapped by hand:
Placemark name and description, ExtendedData ``Data``/``SimpleData`` in order of appearance,
Point/LineString/Polygon/MultiGeometry in lon/lat.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
import pandas as pd
import shapely
from defusedxml import ElementTree

from catalog.model import Decision
from ingest.archive import Limits
from ingest.errors import SourceRefused
from ingest.readers.base import RawLayer, Reader, ReadOptions


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element, name: str) -> Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: Element, name: str) -> str | None:
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text and c.text.strip() else None


def _coords(el: Element) -> list[tuple[float, float]]:
    """Tuples of a <coordinates> element; tolerates spaces after commas (hand-edited KML)."""
    node = next((c for c in el.iter() if _local(c.tag) == "coordinates"), None)
    if node is None or not node.text:
        return []
    text = re.sub(r"\s*,\s*", ",", node.text.strip())
    out = []
    for token in text.split():
        parts = token.split(",")
        try:
            out.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError) as e:
            raise ValueError(f"malformed coordinate {token!r}") from e
    return out


def _track(el: Element):
    """A gx:Track (GPS track: gx:coord "lon lat alt" elements) as a LineString."""
    pts = []
    for c in el.iter():
        if _local(c.tag) == "coord" and c.text:
            lon, lat, *_ = c.text.split()
            pts.append((float(lon), float(lat)))
    return shapely.LineString(pts) if len(pts) >= 2 else None


def _geometry(el: Element):
    kind = _local(el.tag)
    if kind == "Point":
        c = _coords(el)
        return shapely.Point(c[0]) if c else None
    if kind in ("LineString", "LinearRing"):
        c = _coords(el)
        return shapely.LineString(c) if len(c) >= 2 else None
    if kind == "Polygon":
        outer = next((c for c in el.iter() if _local(c.tag) == "outerBoundaryIs"), None)
        inners = [c for c in el.iter() if _local(c.tag) == "innerBoundaryIs"]
        shell = _coords(outer) if outer is not None else []
        return shapely.Polygon(shell, [_coords(i) for i in inners]) if len(shell) >= 3 else None
    if kind == "Track":
        return _track(el)
    if kind == "MultiTrack":
        return _collect([g for g in (_track(c) for c in el if _local(c.tag) == "Track") if g])
    if kind == "MultiGeometry":
        parts = [g for g in (_geometry(c) for c in el) if g is not None]
        return _collect(parts)
    return None


def _collect(parts: list):
    if not parts:
        return None
    kinds = {p.geom_type for p in parts}
    if kinds == {"Point"}:
        return shapely.MultiPoint(parts)
    if kinds == {"LineString"}:
        return shapely.MultiLineString(parts)
    if kinds == {"Polygon"}:
        return shapely.MultiPolygon(parts)
    return shapely.GeometryCollection(parts)


GEOMETRY_TAGS = {
    "Point",
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiGeometry",
    "Track",
    "MultiTrack",
}
MAX_KML_BYTES = 512 * 2**20


def _placemark(pm: Element) -> tuple[dict, object]:
    attrs: dict[str, str | None] = {
        "name": _text(pm, "name"),
        "description": _text(pm, "description"),
    }
    for el in pm.iter():
        tag = _local(el.tag)
        if tag == "Data" and el.get("name"):
            attrs[el.get("name")] = _text(el, "value")
        elif tag == "SimpleData" and el.get("name"):
            attrs[el.get("name")] = el.text.strip() if el.text and el.text.strip() else None
    geom_el = next((c for c in pm if _local(c.tag) in GEOMETRY_TAGS), None)
    try:
        return attrs, (_geometry(geom_el) if geom_el is not None else None)
    except ValueError as e:
        raise ValueError(f"placemark {attrs['name'] or '(no name)'}: {e}") from e


class KMLReader(Reader):
    """KML documents and KMZ archives; top-level folders are sublayers."""

    name = "kml"
    suffixes = (".kml", ".kmz")

    def _root(self, path: Path) -> Element:
        try:
            if path.suffix.lower() == ".kmz":
                with zipfile.ZipFile(path) as zf:
                    info = next(i for i in zf.infolist() if i.filename.lower().endswith(".kml"))
                    ratio = info.file_size / max(1, info.compress_size)
                    if info.file_size > MAX_KML_BYTES or ratio > Limits().max_entry_ratio:
                        raise SourceRefused(
                            str(path),
                            "zip-bomb",
                            f"its KML expands to {info.file_size} bytes ({ratio:.0f}×): refused "
                            "as a possible zip bomb",
                        )
                    return ElementTree.fromstring(zf.read(info))
            return ElementTree.parse(path).getroot()
        except (ParseError, StopIteration, zipfile.BadZipFile, ValueError) as e:
            raise SourceRefused(str(path), "bad-kml", f"not a readable KML document ({e})") from e

    def _groups(self, root: Element) -> list[tuple[str, list[Element]]]:
        doc = next((c for c in root.iter() if _local(c.tag) == "Document"), root)
        folders = [c for c in doc if _local(c.tag) == "Folder"]
        direct = [c for c in doc if _local(c.tag) == "Placemark"]
        groups = []
        if direct or not folders:
            groups.append(
                (
                    _text(doc, "name") or "KML",
                    direct
                    if folders
                    else list(p for p in doc.iter() if _local(p.tag) == "Placemark"),
                )
            )
        seen: dict[str, int] = {}
        for f in folders:
            name = _text(f, "name") or "Folder"
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name} ({seen[name]})"
            groups.append((label, [p for p in f.iter() if _local(p.tag) == "Placemark"]))
        return groups

    def sublayers(self, path: Path) -> list[str]:
        """Top-level folder names (a document without folders is one layer)."""
        groups = self._groups(self._root(path))
        return [g[0] for g in groups] if len(groups) > 1 else []

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read the placemarks of one folder (or of the whole document)."""
        groups = self._groups(self._root(path))
        if sublayer is None:
            placemarks = [p for _, ps in groups for p in ps]
        else:
            match = [ps for name, ps in groups if name == sublayer]
            if not match:
                names = ", ".join(g[0] for g in groups)
                raise SourceRefused(
                    options.display,
                    "no-such-layer",
                    f"has no folder {sublayer!r}",
                    f"folders are: {names}",
                )
            placemarks = match[0]
        try:
            parsed = [_placemark(p) for p in placemarks]
        except ValueError as e:
            raise SourceRefused(
                options.display, "bad-kml", str(e), "fix the coordinates of that placemark"
            ) from e
        rows, geoms = zip(*parsed, strict=True) if parsed else ((), ())
        frame = pd.DataFrame(list(rows), dtype=object)
        frame = frame.drop(
            columns=[c for c in ("name", "description") if c in frame and frame[c].isna().all()]
        )
        frame = frame.where(frame.notna(), None)
        return RawLayer(
            sublayer=sublayer,
            attributes=frame,
            geometry=np.array(geoms, dtype=object),
            crs_evidence="implicit-4326",
            text_columns=tuple(frame.columns),
            decisions=[Decision("encoding", "utf-8", "format", 1.0, "KML is UTF-8 XML")],
        )


READERS = {"kml": KMLReader()}
