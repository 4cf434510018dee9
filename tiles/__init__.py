"""Tiles: PMTiles archives, WMS rendering, WMTS, XYZ and TileJSON."""
