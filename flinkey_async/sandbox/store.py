"""The sandbox's data: customers, cars, users and assignments, in memory.

:class:`SandboxStore` holds immutable records (attrs, frozen) and keeps indexes by car and by
user, so every change goes through its methods. Tests seed data from Python::

    store = sandbox.store
    customer = store.add_customer(7, "Rent & Drive")
    car = store.add_car(7, name="Golf")
    user = store.add_user(7, email="jo@example.com")
    store.add_assignment(car.id, user.id, datetime(2026, 1, 1, tzinfo=UTC))

or load a JSON fixture (:meth:`SandboxStore.load_fixture`; the format is the one of the bundled
``fixture.json``: ``customers``, ``cars`` and ``users`` with a ``customerId``, ``assignments``
in the single-assignment wire shape). Ids are database ids, unique across customers; a record
added without an id gets the next free one.

The ``*_wire`` functions give each record's JSON shape as the flinkey API sends it, and the
``*_SCHEMA`` constants describe those shapes to the OData evaluator.

:meth:`SandboxStore.remove_car_assignments` does what flinkey does when a Box is uninstalled:
it deletes every assignment of the car and reports each deletion through the webhook, unasked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any

import attrs

from .._converter import format_datetime, parse_datetime, wire_datetime
from ..models import DEFAULT_LIFETIME
from ..operations import body_checksum
from .odata_eval import DATETIME, INT, STR, EntitySchema

__all__ = [
    "ASSIGNMENT_SCHEMA",
    "CAR_ASSIGNMENT_SCHEMA",
    "CAR_SCHEMA",
    "CUSTOMER_SCHEMA",
    "USER_ASSIGNMENT_SCHEMA",
    "USER_SCHEMA",
    "Car",
    "Customer",
    "SandboxStore",
    "StoredAssignment",
    "User",
    "assignment_wire",
    "car_assignment_wire",
    "car_wire",
    "customer_wire",
    "default_fixture_path",
    "delete_checksum",
    "delete_payload",
    "user_assignment_wire",
    "user_wire",
]

#: Largest id the API can carry (``int32``).
MAX_ID = 2**31 - 1


def default_fixture_path() -> str:
    """Path of the bundled ``fixture.json`` (2 customers, their cars, users and assignments)."""
    return str(resources.files(__package__ or "flinkey_async.sandbox").joinpath("fixture.json"))


@attrs.frozen
class Customer:
    """A customer (``GET /customers`` item)."""

    id: int
    name: str


@attrs.frozen
class Car:
    """A car of a customer (the ``Car`` schema plus its owner's ``customer_id``)."""

    id: int
    customer_id: int
    name: str
    description: str | None = None
    vin: str | None = None
    license_plate: str | None = None
    brand: str | None = None
    model: str | None = None


@attrs.frozen
class User:
    """A user of a customer (the ``User`` schema plus its owner's ``customer_id``)."""

    id: int
    customer_id: int
    email_address: str
    first_name: str | None = None
    last_name: str | None = None


@attrs.frozen
class StoredAssignment:
    """An assignment as stored. ``renewable_after_explicit`` is False when ``renewable_after``
    is the default (half the lifetime), so it follows a later change of the lifetime."""

    id: int
    customer_id: int
    car_id: int
    user_id: int | None
    start: datetime
    end: datetime | None
    lifetime: int | None = DEFAULT_LIFETIME
    renewable_after: int | None = DEFAULT_LIFETIME // 2
    renewable_after_explicit: bool = True


# --- wire shapes ------------------------------------------------------------------------------

CUSTOMER_SCHEMA = EntitySchema("Customer", {"id": INT, "name": STR})
CAR_SCHEMA = EntitySchema("Car", {
    "id": INT, "name": STR, "description": STR, "vin": STR, "licensePlate": STR,
    "brand": STR, "model": STR,
})
USER_SCHEMA = EntitySchema("User", {
    "id": INT, "emailAddress": STR,
    "userData": EntitySchema("UserData", {"firstName": STR, "lastName": STR}),
})
ASSIGNMENT_SCHEMA = EntitySchema("Assignment", {
    "id": INT, "carId": INT, "userId": INT, "start": DATETIME, "end": DATETIME,
    "lifetime": INT, "renewableAfter": INT,
})
CAR_ASSIGNMENT_SCHEMA = EntitySchema("CarAssignment", {
    "id": INT, "userId": INT, "start": DATETIME, "end": DATETIME,
})
USER_ASSIGNMENT_SCHEMA = EntitySchema("UserAssignment", {
    "id": INT, "carId": INT, "start": DATETIME, "end": DATETIME,
})


def _dt(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def customer_wire(customer: Customer) -> dict[str, Any]:
    """``{id, name}``; the id is a JSON number."""
    return {"id": customer.id, "name": customer.name}


def car_wire(car: Car) -> dict[str, Any]:
    """The ``Car`` schema."""
    return {"id": car.id, "name": car.name, "description": car.description, "vin": car.vin,
            "licensePlate": car.license_plate, "brand": car.brand, "model": car.model}


def user_wire(user: User) -> dict[str, Any]:
    """The ``User`` schema."""
    return {"id": user.id, "emailAddress": user.email_address,
            "userData": {"firstName": user.first_name, "lastName": user.last_name}}


def assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """The single-assignment schema: all seven fields."""
    return {"id": a.id, "carId": a.car_id, "userId": a.user_id, "start": _dt(a.start),
            "end": _dt(a.end), "lifetime": a.lifetime, "renewableAfter": a.renewable_after}


def car_assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """An item of ``GET /cars/{carId}/assignments``: ``id, userId, start, end``."""
    return {"id": a.id, "userId": a.user_id, "start": _dt(a.start), "end": _dt(a.end)}


def user_assignment_wire(a: StoredAssignment) -> dict[str, Any]:
    """An item of ``GET /users/{userId}/assignments``: ``id, carId, start, end``."""
    return {"id": a.id, "carId": a.car_id, "start": _dt(a.start), "end": _dt(a.end)}


def delete_checksum(assignment_id: int) -> str:
    """Checksum of a delete: MD5 of ``DELETE /assignments/{id}``, 32 upper-case hex digits."""
    return body_checksum(f"DELETE /assignments/{assignment_id}".encode())


def delete_payload(
    checksum: str, assignment_id: int, customer_id: int, deleted: StoredAssignment | None,
    error: str | None,
) -> dict[str, Any]:
    """Webhook payload of a delete; ``carId``/``userId``/``start``/``end`` are those of the
    deleted assignment, or null when it was not found."""
    return {
        "checksum": checksum,
        "assignmentId": assignment_id,
        "customerId": customer_id,
        "operationSucceeded": error is None,
        "errorMessage": error,
        "carId": deleted.car_id if deleted else None,
        "userId": deleted.user_id if deleted else None,
        "start": _dt(deleted.start) if deleted else None,
        "end": _dt(deleted.end) if deleted else None,
    }


# --- the store --------------------------------------------------------------------------------

Listener = Callable[[dict[str, Any]], None]


def _datetime_arg(value: datetime | str, name: str) -> datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime or an ISO-8601 string")
    return wire_datetime(value, name)


class SandboxStore:
    """In-memory customers, cars, users and assignments, with indexes by car and by user.

    ``version`` grows with every change (the sandbox uses it to invalidate cached answers).
    Lookups return ``None`` for unknown ids; the ``add_*`` methods raise ``ValueError`` for
    duplicate ids and dangling references.
    """

    def __init__(self) -> None:
        self.customers: dict[int, Customer] = {}
        self.cars: dict[int, Car] = {}
        self.users: dict[int, User] = {}
        self.assignments: dict[int, StoredAssignment] = {}
        self.version = 0
        self._by_car: dict[int, set[int]] = {}
        self._by_user: dict[int, set[int]] = {}
        self._listeners: list[Listener] = []

    # -- housekeeping ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(payload)`` for every webhook payload the store emits on its own
        (the deletes of :meth:`remove_car_assignments`)."""
        self._listeners.append(listener)

    def clear(self) -> None:
        """Remove everything."""
        self.customers.clear()
        self.cars.clear()
        self.users.clear()
        self.assignments.clear()
        self._by_car.clear()
        self._by_user.clear()
        self.version += 1

    @staticmethod
    def _next_id(table: Mapping[int, Any], start: int) -> int:
        return max(max(table, default=0) + 1, start)

    @staticmethod
    def _check_new_id(table: Mapping[int, Any], id: int, what: str) -> None:
        if type(id) is not int or not 0 < id <= MAX_ID:
            raise ValueError(f"{what} id must be an int between 1 and {MAX_ID}, got {id!r}")
        if id in table:
            raise ValueError(f"{what} {id} already exists")

    # -- customers, cars, users ----------------------------------------------------------------

    def add_customer(self, id: int | None = None, name: str | None = None) -> Customer:
        """Add a customer (``id`` defaults to the next free one)."""
        if id is None:
            id = self._next_id(self.customers, 1)
        self._check_new_id(self.customers, id, "customer")
        customer = Customer(id, name if name is not None else f"Customer {id}")
        self.customers[id] = customer
        self.version += 1
        return customer

    def _require_customer(self, customer_id: int) -> None:
        if customer_id not in self.customers:
            raise ValueError(f"unknown customer {customer_id}")

    def add_car(
        self, customer_id: int, id: int | None = None, *, name: str | None = None,
        description: str | None = None, vin: str | None = None, license_plate: str | None = None,
        brand: str | None = None, model: str | None = None,
    ) -> Car:
        """Add a car of ``customer_id``."""
        self._require_customer(customer_id)
        if id is None:
            id = self._next_id(self.cars, 1)
        self._check_new_id(self.cars, id, "car")
        car = Car(id, customer_id, name if name is not None else f"Car {id}", description, vin,
                  license_plate, brand, model)
        self.cars[id] = car
        self.version += 1
        return car

    def add_user(
        self, customer_id: int, id: int | None = None, *, email: str | None = None,
        first_name: str | None = None, last_name: str | None = None,
    ) -> User:
        """Add a user of ``customer_id`` (``email`` defaults to ``user{id}@example.com``)."""
        self._require_customer(customer_id)
        if id is None:
            id = self._next_id(self.users, 1)
        self._check_new_id(self.users, id, "user")
        user = User(id, customer_id, email if email is not None else f"user{id}@example.com",
                    first_name, last_name)
        self.users[id] = user
        self.version += 1
        return user

    def get_customer(self, customer_id: int) -> Customer | None:
        return self.customers.get(customer_id)

    def get_car(self, car_id: int, customer_id: int | None = None) -> Car | None:
        """The car, or None when unknown (or not of ``customer_id`` when given)."""
        car = self.cars.get(car_id)
        if car is None or (customer_id is not None and car.customer_id != customer_id):
            return None
        return car

    def get_user(self, user_id: int, customer_id: int | None = None) -> User | None:
        """The user, or None when unknown (or not of ``customer_id`` when given)."""
        user = self.users.get(user_id)
        if user is None or (customer_id is not None and user.customer_id != customer_id):
            return None
        return user

    def cars_of(self, customer_id: int) -> list[Car]:
        """The customer's cars, by id."""
        return sorted((c for c in self.cars.values() if c.customer_id == customer_id),
                      key=lambda c: c.id)

    def users_of(self, customer_id: int) -> list[User]:
        """The customer's users, by id."""
        return sorted((u for u in self.users.values() if u.customer_id == customer_id),
                      key=lambda u: u.id)

    # -- assignments -----------------------------------------------------------------------------

    def add_assignment(
        self, car_id: int, user_id: int | None, start: datetime | str,
        end: datetime | str | None = None, *, lifetime: int | None = DEFAULT_LIFETIME,
        renewable_after: int | None = None, id: int | None = None,
    ) -> StoredAssignment:
        """Add an assignment at once (no validation of the lifetime rules: tests may want odd
        data). The customer is the car's; ``user_id`` must be a user of the same customer (or
        None). ``renewable_after`` defaults to half the lifetime. Datetimes are truncated to
        whole seconds."""
        car = self.cars.get(car_id)
        if car is None:
            raise ValueError(f"unknown car {car_id}")
        if user_id is not None:
            user = self.users.get(user_id)
            if user is None or user.customer_id != car.customer_id:
                raise ValueError(f"user {user_id} is not a user of customer {car.customer_id}")
        if id is None:
            id = self._next_id(self.assignments, 1)
        self._check_new_id(self.assignments, id, "assignment")
        explicit = renewable_after is not None
        if renewable_after is None and lifetime is not None:
            renewable_after = lifetime // 2
        record = StoredAssignment(
            id, car.customer_id, car_id, user_id, _datetime_arg(start, "start"),
            None if end is None else _datetime_arg(end, "end"), lifetime, renewable_after,
            explicit,
        )
        self._insert(record)
        return record

    def _insert(self, record: StoredAssignment) -> None:
        self.assignments[record.id] = record
        self._by_car.setdefault(record.car_id, set()).add(record.id)
        if record.user_id is not None:
            self._by_user.setdefault(record.user_id, set()).add(record.id)
        self.version += 1

    def _unindex(self, record: StoredAssignment) -> None:
        self._by_car.get(record.car_id, set()).discard(record.id)
        if record.user_id is not None:
            self._by_user.get(record.user_id, set()).discard(record.id)

    def replace_assignment(self, record: StoredAssignment) -> None:
        """Store ``record`` in place of the assignment with the same id."""
        old = self.assignments.get(record.id)
        if old is None:
            raise ValueError(f"unknown assignment {record.id}")
        self._unindex(old)
        self._insert(record)

    def remove_assignment(self, assignment_id: int) -> StoredAssignment | None:
        """Delete an assignment at once, without any webhook; returns it (None if unknown)."""
        record = self.assignments.pop(assignment_id, None)
        if record is not None:
            self._unindex(record)
            self.version += 1
        return record

    def get_assignment(
        self, assignment_id: int, customer_id: int | None = None
    ) -> StoredAssignment | None:
        """The assignment, or None when unknown (or not of ``customer_id`` when given)."""
        record = self.assignments.get(assignment_id)
        if record is None or (customer_id is not None and record.customer_id != customer_id):
            return None
        return record

    def assignments_for_car(self, car_id: int) -> list[StoredAssignment]:
        """The car's assignments, by id."""
        return [self.assignments[i] for i in sorted(self._by_car.get(car_id, ()))]

    def assignments_for_user(self, user_id: int) -> list[StoredAssignment]:
        """The user's assignments, by id."""
        return [self.assignments[i] for i in sorted(self._by_user.get(user_id, ()))]

    def assignments_of(self, customer_id: int) -> list[StoredAssignment]:
        """All assignments of a customer, by id."""
        return sorted((a for a in self.assignments.values() if a.customer_id == customer_id),
                      key=lambda a: a.id)

    def remove_car_assignments(self, car_id: int) -> list[StoredAssignment]:
        """Delete every assignment of ``car_id``, as flinkey does when the car's Box is
        uninstalled, and emit one (unsolicited) delete webhook payload per assignment, with
        the checksum of ``DELETE /assignments/{id}``. Returns the deleted assignments."""
        removed: list[StoredAssignment] = []
        for record in self.assignments_for_car(car_id):
            self.remove_assignment(record.id)
            removed.append(record)
        for record in removed:
            payload = delete_payload(delete_checksum(record.id), record.id, record.customer_id,
                                     record, None)
            for listener in list(self._listeners):
                listener(payload)
        return removed

    # -- fixtures ----------------------------------------------------------------------------------

    def load_fixture(
        self, source: str | os.PathLike[str] | Mapping[str, Any], *, replace: bool = True
    ) -> None:
        """Load a JSON fixture (a path, or the decoded mapping). With ``replace`` (default) the
        store is cleared first. Raises ``ValueError`` for malformed data."""
        if isinstance(source, Mapping):
            data: Any = source
        else:
            with open(source, encoding="utf-8") as fh:
                data = json.load(fh)
        if not isinstance(data, Mapping):
            raise ValueError("a fixture is a JSON object with customers, cars, users, assignments")
        if replace:
            self.clear()
        try:
            for c in _items(data, "customers"):
                self.add_customer(c["id"], c["name"])
            for c in _items(data, "cars"):
                self.add_car(c["customerId"], c["id"], name=c["name"],
                             description=c.get("description"), vin=c.get("vin"),
                             license_plate=c.get("licensePlate"), brand=c.get("brand"),
                             model=c.get("model"))
            for u in _items(data, "users"):
                user_data = u.get("userData") or {}
                self.add_user(u["customerId"], u["id"], email=u["emailAddress"],
                              first_name=user_data.get("firstName"),
                              last_name=user_data.get("lastName"))
            for a in _items(data, "assignments"):
                self.add_assignment(a["carId"], a.get("userId"), a["start"], a.get("end"),
                                    lifetime=a.get("lifetime", DEFAULT_LIFETIME),
                                    renewable_after=a.get("renewableAfter"), id=a["id"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed fixture: {exc!r}") from None

    def dump_fixture(self) -> dict[str, Any]:
        """The store's content in the fixture format (loadable by :meth:`load_fixture`).

        A ``renewableAfter`` that is the default (half the lifetime) is written as null, so it
        stays a default after loading."""
        return {
            "customers": [customer_wire(c) for c in sorted(self.customers.values(),
                                                           key=lambda c: c.id)],
            "cars": [{**car_wire(c), "customerId": c.customer_id}
                     for c in sorted(self.cars.values(), key=lambda c: c.id)],
            "users": [{**user_wire(u), "customerId": u.customer_id}
                      for u in sorted(self.users.values(), key=lambda u: u.id)],
            "assignments": [
                {**assignment_wire(a),
                 "renewableAfter": a.renewable_after if a.renewable_after_explicit else None}
                for a in sorted(self.assignments.values(), key=lambda a: a.id)
            ],
        }


def _items(data: Mapping[str, Any], key: str) -> Iterable[Mapping[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ValueError(f"fixture key {key!r} must be a list of objects")
    return items
