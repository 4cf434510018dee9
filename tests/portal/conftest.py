"""Portal test fixtures: ingested, tiled, ogc and served are in tests/conftest.py."""
