"""The synchronous writes that name a product: installations (``PUT``/``DELETE
/installations``) and pairings (``PUT``/``DELETE /pairings``).

Unlike the assignment writes these are applied at once, and their answer is the outcome: 204,
or a bare-text error. Each :class:`~.bodies.Refusal` names the status and the text
(:mod:`flinkey_async.sandbox.messages`).

The bodies are ``{carId | serviceId, uniqueId?, serialNumber?, productId?}``. A product is named
by any of the three identifiers; when several are given they must name the same product (the
reference does not say; the SDK always sends one). Ids must be JSON integers.

Rules, in the order they are checked:

* install: a valid ``carId`` (400), a valid identifier (400), the customer's car (404) and
  product (404); the product is in no car (409 "already installed"), has a service (409 "no
  service assigned"), and the car holds no product of its type (409 "same type") -- so a car
  holds at most two products, one of each type. Documented texts throughout.
* uninstall (only its heading is documented; the body is taken to be the install's): the
  same checks with the sandbox's own 400 texts, then the product must be in that car (409).
  Taking out a flinkey Box removes every assignment of the car and reports each by an
  unsolicited delete webhook (:meth:`SandboxStore.remove_car_assignments`), as flinkey's
  update guide describes.
* pair / unpair (no error answers documented; the sandbox's own texts): a valid ``serviceId``
  (400) and identifier (400), the customer's service (404) and product (404); a pair needs a
  service and a product without partners (409), an unpair the service paired with that
  product (409).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..._wire import MAX_ID
from ..messages import (
    CAR_NOT_FOUND,
    INSTALL_NO_VALID_CAR_ID,
    INSTALL_NO_VALID_PRODUCT,
    PAIR_NO_VALID_PRODUCT,
    PAIR_NO_VALID_SERVICE_ID,
    PRODUCT_ALREADY_INSTALLED,
    PRODUCT_ALREADY_PAIRED,
    PRODUCT_HAS_NO_SERVICE,
    PRODUCT_NOT_FOUND,
    PRODUCT_NOT_INSTALLED,
    PRODUCT_TYPE_ALREADY_INSTALLED,
    SERVICE_ALREADY_PAIRED,
    SERVICE_NOT_FOUND,
    SERVICE_NOT_PAIRED,
    UNINSTALL_NO_VALID_CAR_ID,
    UNINSTALL_NO_VALID_PRODUCT,
    UNPAIR_NO_VALID_PRODUCT,
    UNPAIR_NO_VALID_SERVICE_ID,
)
from ..store import SandboxStore
from ..store.products import BOX, Product, find_product
from ..store.services import Service
from .bodies import Refusal, load_json

__all__ = ["install", "pair", "uninstall", "unpair"]


def _id(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if type(value) is int and 0 < value <= MAX_ID:
        return value
    return None


def _parse(
    body: bytes, owner_key: str, no_owner: str, no_product: str
) -> tuple[int, int | None, str | None, str | None]:
    """``(owner id, productId, serialNumber, uniqueId)`` of a body (raises
    :class:`BodyError` for invalid JSON, :class:`Refusal` for a missing or malformed field)."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise Refusal(400, no_owner)
    owner = _id(data, owner_key)
    if owner is None:
        raise Refusal(400, no_owner)
    product_id = data.get("productId")
    serial_number = data.get("serialNumber")
    unique_id = data.get("uniqueId")
    valid = (
        (product_id is None or _id(data, "productId") is not None)
        and (serial_number is None or (type(serial_number) is str and serial_number != ""))
        and (unique_id is None or (type(unique_id) is str and unique_id != ""))
        and not (product_id is None and serial_number is None and unique_id is None)
    )
    if not valid:
        raise Refusal(400, no_product)
    return owner, product_id, serial_number, unique_id


def _product(store: SandboxStore, customer_id: int, ids: tuple[Any, ...]) -> Product:
    product = find_product(store.owned_by(Product, customer_id), *ids)
    if product is None:
        raise Refusal(404, PRODUCT_NOT_FOUND)
    return product


def install(store: SandboxStore, customer_id: int, body: bytes) -> None:
    """``PUT /installations``: raises :class:`Refusal` (or :class:`BodyError`) when refused."""
    car_id, *ids = _parse(body, "carId", INSTALL_NO_VALID_CAR_ID, INSTALL_NO_VALID_PRODUCT)
    if store.get_car(car_id, customer_id) is None:
        raise Refusal(404, CAR_NOT_FOUND)
    product = _product(store, customer_id, tuple(ids))
    if product.car_id is not None:
        raise Refusal(409, PRODUCT_ALREADY_INSTALLED)
    if not any(s.product_id == product.id for s in store.owned_by(Service, customer_id)):
        raise Refusal(409, PRODUCT_HAS_NO_SERVICE)
    if any(
        p.car_id == car_id and p.type == product.type for p in store.owned_by(Product, customer_id)
    ):
        raise Refusal(409, PRODUCT_TYPE_ALREADY_INSTALLED)
    store.replace(attrs.evolve(product, car_id=car_id))


def uninstall(store: SandboxStore, customer_id: int, body: bytes) -> None:
    """``DELETE /installations``; taking out a Box removes the car's assignments (with their
    unsolicited delete webhooks)."""
    car_id, *ids = _parse(body, "carId", UNINSTALL_NO_VALID_CAR_ID, UNINSTALL_NO_VALID_PRODUCT)
    if store.get_car(car_id, customer_id) is None:
        raise Refusal(404, CAR_NOT_FOUND)
    product = _product(store, customer_id, tuple(ids))
    if product.car_id != car_id:
        raise Refusal(409, PRODUCT_NOT_INSTALLED)
    store.replace(attrs.evolve(product, car_id=None))
    if product.type == BOX:
        store.remove_car_assignments(car_id)


def _service(store: SandboxStore, customer_id: int, service_id: int) -> Service:
    service = store.get(Service, service_id, customer_id)
    if service is None:
        raise Refusal(404, SERVICE_NOT_FOUND)
    return service


def pair(store: SandboxStore, customer_id: int, body: bytes) -> None:
    """``PUT /pairings``."""
    service_id, *ids = _parse(body, "serviceId", PAIR_NO_VALID_SERVICE_ID, PAIR_NO_VALID_PRODUCT)
    service = _service(store, customer_id, service_id)
    product = _product(store, customer_id, tuple(ids))
    if service.product_id is not None:
        raise Refusal(409, SERVICE_ALREADY_PAIRED)
    if any(s.product_id == product.id for s in store.owned_by(Service, customer_id)):
        raise Refusal(409, PRODUCT_ALREADY_PAIRED)
    store.replace(attrs.evolve(service, product_id=product.id))


def unpair(store: SandboxStore, customer_id: int, body: bytes) -> None:
    """``DELETE /pairings``."""
    service_id, *ids = _parse(
        body, "serviceId", UNPAIR_NO_VALID_SERVICE_ID, UNPAIR_NO_VALID_PRODUCT
    )
    service = _service(store, customer_id, service_id)
    product = _product(store, customer_id, tuple(ids))
    if service.product_id != product.id:
        raise Refusal(409, SERVICE_NOT_PAIRED)
    store.replace(attrs.evolve(service, product_id=None))
