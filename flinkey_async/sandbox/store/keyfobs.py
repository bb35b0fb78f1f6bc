"""The keyfob catalog: brands (``GET /brands``, plain strings) and their keys (the items of
``GET /brands/{brand}/keys``). The catalog belongs to no customer."""

from __future__ import annotations

from typing import Any

import attrs

from ..odata_eval import INT, STR, EntitySchema

__all__ = ["BRAND_SCHEMA", "KEYFOB_SCHEMA", "Keyfob", "keyfob_wire"]


@attrs.frozen
class Keyfob:
    """A key of a brand, the box it fits (when known) and its key form."""

    id: int
    brand: str
    key_form_id: int
    key_form_name: str
    key_form_image_url: str
    box_name: str | None = None
    box_sap_number: str | None = None


#: Brands are plain strings: no property to filter, order or select by (paging only).
BRAND_SCHEMA = EntitySchema("Brand", {})

#: The wire shape of a key, for the OData evaluator (``keyForm`` is a complex type).
KEYFOB_SCHEMA = EntitySchema(
    "Keyfob",
    {
        "id": INT,
        "brand": STR,
        "boxName": STR,
        "boxSapNumber": STR,
        "keyForm": EntitySchema("KeyForm", {"id": INT, "name": STR, "imageUrl": STR}),
    },
)


def keyfob_wire(key: Keyfob) -> dict[str, Any]:
    """``{id, brand, boxName, boxSapNumber, keyForm: {id, name, imageUrl}}``."""
    return {
        "id": key.id,
        "brand": key.brand,
        "boxName": key.box_name,
        "boxSapNumber": key.box_sap_number,
        "keyForm": {
            "id": key.key_form_id,
            "name": key.key_form_name,
            "imageUrl": key.key_form_image_url,
        },
    }
