"""The keyfob catalog: car brands (``GET /brands``, plain strings) and the keys of a brand
(``GET /brands/{brand}/keys``). Neither is customer-scoped: no ``Customer-ID`` is sent."""

from __future__ import annotations

import attrs

__all__ = ["KeyForm", "Keyfob"]


@attrs.frozen
class KeyForm:
    """The shape of a key (``keyForm``), with a picture of it."""

    id: int
    name: str
    image_url: str


@attrs.frozen
class Keyfob:
    """An item of ``GET /brands/{brand}/keys``: a key of the brand, and the box it fits when
    known (``box_name``, ``box_sap_number``)."""

    id: int
    brand: str
    box_name: str | None
    box_sap_number: str | None
    key_form: KeyForm
