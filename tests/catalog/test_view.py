"""The cached catalog view the servers read: fresh after changes, unchanged otherwise."""

from __future__ import annotations

import threading

from catalog import Catalog
from catalog.view import CatalogView
from tests.catalog.helpers import make_layer, make_version


def test_the_view_follows_publishes_and_deletes_and_keeps_its_snapshot_otherwise(
    catalog: Catalog,
):
    view = CatalogView(catalog, ttl=0)
    catalog.upsert_layer(make_layer("parking", "停車場"))
    first = view.snapshot()
    assert first.versions == {} and "parking" in first.layers
    assert view.snapshot() is first  # nothing changed: the same snapshot, same stamp

    v1 = make_version("parking", 1)
    catalog.publish_version(v1)
    second = view.snapshot()
    assert second.versions == {"parking": v1} and second.stamp != first.stamp

    catalog.upsert_layer(make_layer("parking", "停車場（新名）"))
    third = view.snapshot()
    assert third.layers["parking"].title == "停車場（新名）" and third.stamp != second.stamp

    catalog.delete_layer("parking")
    assert view.snapshot().layers == {}


def test_readers_are_answered_from_the_last_snapshot_while_one_thread_refreshes(
    catalog: Catalog,
):
    catalog.upsert_layer(make_layer("parking", "停車場"))
    view = CatalogView(catalog, ttl=0)
    first = view.snapshot()
    results = []
    with view._lock:  # a refresh is under way in "another thread"
        reader = threading.Thread(target=lambda: results.append(view.snapshot()))
        reader.start()
        reader.join(timeout=10)
    assert results == [first]
