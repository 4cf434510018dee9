"""GeoJSON, TopoJSON and GeoPackage: formats GDAL reads correctly once told what to look for."""

from __future__ import annotations

from pathlib import Path

from pyproj import CRS

from catalog.model import Decision
from ingest.readers import ogr
from ingest.readers.base import RawLayer, Reader, ReadOptions


def _is_lonlat(wkt: str | None) -> bool:
    if not wkt:
        return True
    crs = CRS.from_user_input(wkt).to_2d()  # GDAL reports 3-D GeoJSON as EPSG:4979
    return crs.to_epsg() == 4326 or crs.equals(CRS.from_user_input("OGC:CRS84"))


def _encoding(options: ReadOptions, fmt: str) -> Decision:
    if options.encoding:
        return Decision("encoding", options.encoding, "manifest", 1.0, "as the manifest says")
    return Decision("encoding", "utf-8", "format", 1.0, f"{fmt} is UTF-8")


class GeoJSONReader(Reader):
    """GeoJSON (RFC 7946 lon/lat, or the 2008 spec with a legacy ``crs`` member)."""

    name = "geojson"
    suffixes = (".geojson", ".json")

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read features; a ``crs`` member other than lon/lat is reported as declared."""
        meta, attrs, geoms, fixed = ogr.read(path, options.display, encoding=options.encoding)
        wkt = meta.get("crs")
        declared = None if _is_lonlat(wkt) else wkt
        return RawLayer(
            sublayer=None,
            attributes=attrs,
            geometry=geoms,
            crs_wkt=declared,
            crs_evidence="crs-member" if declared else "implicit-4326",
            decisions=[_encoding(options, "GeoJSON")],
            repairs=ogr.ring_repair(fixed),
        )


class TopoJSONReader(GeoJSONReader):
    """TopoJSON topologies (arcs decoded by GDAL); each object would be a sublayer."""

    name = "topojson"
    suffixes = (".topojson",)

    def sublayers(self, path: Path) -> list[str]:
        """The topology's objects, when there are several."""
        names = ogr.layer_names(path, str(path))
        return names if len(names) > 1 else []

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read one object of the topology."""
        _, attrs, geoms, fixed = ogr.read(
            path, options.display, layer=sublayer, encoding=options.encoding
        )
        attrs = attrs.drop(columns=[c for c in ("id",) if c in attrs and attrs[c].isna().all()])
        return RawLayer(
            sublayer=sublayer,
            attributes=attrs,
            geometry=geoms,
            crs_wkt=None,
            crs_evidence="implicit-4326",
            decisions=[_encoding(options, "TopoJSON")],
            repairs=ogr.ring_repair(fixed),
        )


class GeoPackageReader(Reader):
    """GeoPackages: each table is a sublayer, each with its own SRS."""

    name = "gpkg"
    suffixes = (".gpkg",)

    def sublayers(self, path: Path) -> list[str]:
        """Tables in the order GDAL lists them (gpkg_contents order)."""
        names = ogr.layer_names(path, str(path))
        return names if len(names) > 1 else []

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read one table."""
        meta, attrs, geoms, fixed = ogr.read(
            path, options.display, layer=sublayer, encoding=options.encoding
        )
        wkt = meta.get("crs")
        return RawLayer(
            sublayer=sublayer,
            attributes=attrs,
            geometry=geoms if meta.get("geometry_type") else None,
            crs_wkt=wkt,
            crs_evidence="gpkg" if wkt else "none",
            decisions=[Decision("encoding", "utf-8", "format", 1.0, "GeoPackage is UTF-8")],
            repairs=ogr.ring_repair(fixed),
        )


READERS = {"geojson": GeoJSONReader(), "topojson": TopoJSONReader(), "gpkg": GeoPackageReader()}
