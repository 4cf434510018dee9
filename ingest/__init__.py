"""Ingest: read any agency format, decide CRS and encoding, repair, normalise and version layers."""
