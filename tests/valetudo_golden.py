"""Golden check shared by the vendor importer tests: our Valetudo export of an imported map must
equal the ValetudoMap that Valetudo's own parser made from the same file (the fixture's .json).

Layers are compared as pixel sets (the run-length order of Valetudo depends on the order its parser
walked the image, not on the map), with the same metadata and dimensions; entities as multisets
of (type, points, metadata).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from maps.formats.valetudo import decompress, export
from maps.model import MapDocument


def _layer_key(layer: dict) -> tuple:
    return layer["type"], layer["metaData"].get("segmentId")


def _entity_key(entity: dict) -> str:
    return json.dumps(
        [entity["__class"], entity["type"], entity["points"], entity.get("metaData", {})],
        sort_keys=True,
    )


def assert_matches_valetudo(doc: MapDocument, expected_json: str | Path) -> dict:
    """Assert equality with the expected ValetudoMap; returns our export for further checks."""
    expected = json.loads(Path(expected_json).read_text())
    ours = export(doc)
    assert ours["size"] == expected["size"]
    assert ours["pixelSize"] == expected["pixelSize"]
    want = {_layer_key(layer): layer for layer in expected["layers"]}
    got = {_layer_key(layer): layer for layer in ours["layers"]}
    assert sorted(got, key=str) == sorted(want, key=str)
    for key, layer in want.items():
        mine = got[key]
        assert decompress(mine["compressedPixels"]) == decompress(layer["compressedPixels"]), key
        assert mine["metaData"] == layer["metaData"], key
        assert mine["dimensions"] == layer["dimensions"], key
    assert ours["metaData"]["totalLayerArea"] == expected["metaData"]["totalLayerArea"]
    if "vendorMapId" in expected["metaData"]:
        assert ours["metaData"]["vendorMapId"] == expected["metaData"]["vendorMapId"]
    want_entities = Counter(_entity_key(e) for e in expected["entities"])
    got_entities = Counter(_entity_key(e) for e in ours["entities"])
    missing, extra = want_entities - got_entities, got_entities - want_entities
    assert not missing and not extra, f"missing {list(missing)[:3]}, extra {list(extra)[:3]}"
    return ours
