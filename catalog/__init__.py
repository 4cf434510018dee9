"""The spatial catalog: layers, versions, metadata, lineage and search (SQLite or PostgreSQL)."""
