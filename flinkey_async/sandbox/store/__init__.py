"""The sandbox's data: customers, cars, users, assignments, products, services, events, groups
and the keyfob catalog, in memory.

:class:`SandboxStore` holds immutable records (attrs, frozen) and keeps indexes by car and by
user, so every change goes through its methods. Tests seed data from Python::

    store = sandbox.store
    customer = store.add_customer(7, "Rent & Drive")
    car = store.add_car(7, name="Golf")
    user = store.add_user(7, email="jo@example.com")
    store.add_assignment(car.id, user.id, datetime(2026, 1, 1, tzinfo=UTC))

or load a JSON fixture (:meth:`SandboxStore.load_fixture`; the format is the one of the bundled
``fixture.json``: ``customers``; ``cars``, ``users``, ``products`` (with the ``carId`` they are
installed into), ``services`` (with the ``productId`` they are paired with) and ``groups``
(with their ``carIds``), each with a ``customerId``; ``assignments`` in the single-assignment
wire shape; ``events`` in their wire shape (the customer is the car's); the catalog's
``brands`` (strings) and ``keyfobs`` in their wire shape). Ids are database ids, unique across
customers; a record added without an id gets the next free one.

Each resource has its own module here: its record class, its wire shape (the JSON the flinkey
API sends, ``*_wire``) and the OData schema of that shape (``*_SCHEMA``): :mod:`.customers`,
:mod:`.cars`, :mod:`.users`, :mod:`.assignments`, :mod:`.products`, :mod:`.services`,
:mod:`.events`, :mod:`.groups`, :mod:`.keyfobs`. Records of a customer (anything with an ``id``
and a ``customer_id``) share one generic path -- :meth:`SandboxStore.add`,
:meth:`~SandboxStore.get`, :meth:`~SandboxStore.owned_by`, :meth:`~SandboxStore.replace` -- so a
new resource needs no new store method; assignments have their own methods because they are
indexed by car and user, and the keyfob catalog (:attr:`SandboxStore.brands`,
:meth:`~SandboxStore.add_keyfob`) because it belongs to no customer.

:meth:`SandboxStore.remove_car_assignments` does what flinkey does when a Box is uninstalled:
it deletes every assignment of the car and reports each deletion through the webhook, unasked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..._wire import MAX_ID
from .._timestamps import parse_timestamp, to_wire
from .assignments import (
    DEFAULT_LIFETIME,
    StoredAssignment,
    assignment_wire,
    default_renewable_after,
    delete_checksum,
    delete_payload,
)
from .cars import Car, car_wire
from .customers import Customer, customer_wire
from .events import Event, event_wire
from .groups import Group, group_wire
from .keyfobs import Keyfob, keyfob_wire
from .products import Product, product_wire
from .services import Service, service_wire
from .users import User, user_wire

__all__ = [
    "Car",
    "Customer",
    "Event",
    "Group",
    "Keyfob",
    "Listener",
    "Owned",
    "Product",
    "SandboxStore",
    "Service",
    "StoredAssignment",
    "User",
    "parse_id",
]

Listener = Callable[[dict[str, Any]], None]


class Owned(Protocol):
    """A record of one customer: cars, users, products, services, events, groups, and any
    resource added later."""

    @property
    def id(self) -> int: ...

    @property
    def customer_id(self) -> int: ...


OwnedT = TypeVar("OwnedT", bound=Owned)


def parse_id(text: str) -> int | None:
    """An id from a path or a header (decimal digits) as an int in ``1..MAX_ID``, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _datetime_arg(value: datetime | str, name: str) -> datetime:
    if isinstance(value, str):
        value = parse_timestamp(value)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime or an ISO-8601 string")
    return to_wire(value)


class SandboxStore:
    """In-memory customers, their records, assignments (indexed by car and by user) and the
    keyfob catalog.

    ``version`` grows with every change (the sandbox uses it to invalidate cached answers).
    Lookups return ``None`` for unknown ids; the ``add_*`` methods raise ``ValueError`` for
    duplicate ids and dangling references.
    """

    def __init__(self) -> None:
        self.customers: dict[int, Customer] = {}
        self.assignments: dict[int, StoredAssignment] = {}
        # the records of customers, by type (cars, users and any later resource)
        self._owned: dict[type[Any], dict[int, Any]] = {Car: {}, User: {}}
        self.cars: dict[int, Car] = self._owned[Car]
        self.users: dict[int, User] = self._owned[User]
        #: The brands of the keyfob catalog (``GET /brands``), in the order they are listed.
        self.brands: list[str] = []
        #: The keys of the catalog by id (``GET /brands/{brand}/keys``).
        self.keyfobs: dict[int, Keyfob] = {}
        self.version = 0
        self._assignment_ids_issued = 0
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
        for table in self._owned.values():
            table.clear()
        self.assignments.clear()
        self._by_car.clear()
        self._by_user.clear()
        self.brands.clear()
        self.keyfobs.clear()
        self.version += 1

    @staticmethod
    def _next_id(table: Mapping[int, Any]) -> int:
        return max(table, default=0) + 1

    @staticmethod
    def _check_new_id(table: Mapping[int, Any], id: int, what: str) -> None:
        if type(id) is not int or not 0 < id <= MAX_ID:
            raise ValueError(f"{what} id must be an int between 1 and {MAX_ID}, got {id!r}")
        if id in table:
            raise ValueError(f"{what} {id} already exists")

    def _require_customer(self, customer_id: int) -> None:
        if customer_id not in self.customers:
            raise ValueError(f"unknown customer {customer_id}")

    # -- records of a customer, generically --------------------------------------------------

    def _table(self, kind: type[OwnedT]) -> dict[int, OwnedT]:
        return self._owned.setdefault(kind, {})

    def add(self, record: OwnedT) -> OwnedT:
        """Add a record of a customer (a :class:`Car`, a :class:`User`, or the record of a
        resource added later); its customer must exist and its id be new. Assignments are
        added with :meth:`add_assignment`."""
        if isinstance(record, StoredAssignment):
            raise TypeError("add assignments with add_assignment (they are indexed)")
        self._require_customer(record.customer_id)
        table = self._table(type(record))
        self._check_new_id(table, record.id, type(record).__name__.lower())
        table[record.id] = record
        self.version += 1
        return record

    def get(
        self, kind: type[OwnedT], id: int | None, customer_id: int | None = None
    ) -> OwnedT | None:
        """The ``kind`` record with ``id``, or None when unknown (or not of ``customer_id``
        when given)."""
        record = self._table(kind).get(id) if id is not None else None
        if record is None or (customer_id is not None and record.customer_id != customer_id):
            return None
        return record

    def replace(self, record: OwnedT) -> OwnedT:
        """Store ``record`` in place of the record of its type with the same id (of the same
        customer); raises ``ValueError`` when there is none."""
        table = self._table(type(record))
        old = table.get(record.id)
        if old is None or old.customer_id != record.customer_id:
            raise ValueError(f"unknown {type(record).__name__.lower()} {record.id}")
        table[record.id] = record
        self.version += 1
        return record

    def owned_by(self, kind: type[OwnedT], customer_id: int) -> list[OwnedT]:
        """The customer's ``kind`` records, by id."""
        return sorted(
            (r for r in self._table(kind).values() if r.customer_id == customer_id),
            key=lambda r: r.id,
        )

    # -- customers, cars, users ----------------------------------------------------------------

    def add_customer(self, id: int | None = None, name: str | None = None) -> Customer:
        """Add a customer (``id`` defaults to the next free one)."""
        if id is None:
            id = self._next_id(self.customers)
        self._check_new_id(self.customers, id, "customer")
        customer = Customer(id, name if name is not None else f"Customer {id}")
        self.customers[id] = customer
        self.version += 1
        return customer

    def add_car(
        self,
        customer_id: int,
        id: int | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        vin: str | None = None,
        license_plate: str | None = None,
        brand: str | None = None,
        model: str | None = None,
    ) -> Car:
        """Add a car of ``customer_id``."""
        self._require_customer(customer_id)
        if id is None:
            id = self._next_id(self.cars)
        name = name if name is not None else f"Car {id}"
        return self.add(Car(id, customer_id, name, description, vin, license_plate, brand, model))

    def add_user(
        self,
        customer_id: int,
        id: int | None = None,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> User:
        """Add a user of ``customer_id`` (``email`` defaults to ``user{id}@example.com``)."""
        self._require_customer(customer_id)
        if id is None:
            id = self._next_id(self.users)
        email = email if email is not None else f"user{id}@example.com"
        return self.add(User(id, customer_id, email, first_name, last_name))

    def get_car(self, car_id: int, customer_id: int | None = None) -> Car | None:
        """The car, or None when unknown (or not of ``customer_id`` when given)."""
        return self.get(Car, car_id, customer_id)

    def get_user(self, user_id: int, customer_id: int | None = None) -> User | None:
        """The user, or None when unknown (or not of ``customer_id`` when given)."""
        return self.get(User, user_id, customer_id)

    def cars_of(self, customer_id: int) -> list[Car]:
        """The customer's cars, by id."""
        return self.owned_by(Car, customer_id)

    def users_of(self, customer_id: int) -> list[User]:
        """The customer's users, by id."""
        return self.owned_by(User, customer_id)

    def add_event(
        self,
        car_id: int,
        user_id: int,
        utc_date_time: datetime | str,
        *,
        date_time: str | None = None,
        event_type: str = "CarOpened",
        user_agent: str = "flinkey-sandbox",
        latitude: float | None = None,
        longitude: float | None = None,
        id: int | None = None,
    ) -> Event:
        """Add an event of ``car_id`` (the customer is the car's; ``user_id`` must be one of
        its users). ``date_time`` is sent as given (its zone is not documented); it defaults
        to the UTC time without an offset."""
        car = self.cars.get(car_id)
        if car is None:
            raise ValueError(f"unknown car {car_id}")
        user = self.users.get(user_id)
        if user is None or user.customer_id != car.customer_id:
            raise ValueError(f"user {user_id} is not a user of customer {car.customer_id}")
        table = self._table(Event)
        if id is None:
            id = self._next_id(table)
        utc = _datetime_arg(utc_date_time, "utc_date_time")
        local = date_time if date_time is not None else utc.strftime("%Y-%m-%dT%H:%M:%S")
        return self.add(
            Event(
                id,
                car.customer_id,
                car_id,
                user_id,
                local,
                utc,
                event_type,
                user_agent,
                latitude,
                longitude,
            )
        )

    # -- the keyfob catalog --------------------------------------------------------------------

    def add_brand(self, brand: str) -> None:
        """Add a brand to the catalog (once)."""
        if not isinstance(brand, str) or not brand:
            raise ValueError(f"a brand must be a non-empty str, got {brand!r}")
        if brand not in self.brands:
            self.brands.append(brand)
            self.version += 1

    def add_keyfob(self, key: Keyfob) -> Keyfob:
        """Add a key to the catalog (its brand is added too when new)."""
        self._check_new_id(self.keyfobs, key.id, "keyfob")
        self.add_brand(key.brand)
        self.keyfobs[key.id] = key
        self.version += 1
        return key

    def keyfobs_of(self, brand: str) -> list[Keyfob]:
        """The keys of ``brand``, by id."""
        return [k for k in _by_id(self.keyfobs) if k.brand == brand]

    # -- assignments -----------------------------------------------------------------------------

    def add_assignment(
        self,
        car_id: int,
        user_id: int | None,
        start: datetime | str,
        end: datetime | str | None = None,
        *,
        lifetime: int | None = DEFAULT_LIFETIME,
        renewable_after: int | None = None,
        id: int | None = None,
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
            # Like a database sequence, assignment ids are never handed out twice: a deleted
            # assignment's id must not come back (a client polling for a delete would see the
            # new assignment and take the delete for not applied).
            id = max(self._next_id(self.assignments), self._assignment_ids_issued + 1)
        self._check_new_id(self.assignments, id, "assignment")
        self._assignment_ids_issued = max(self._assignment_ids_issued, id)
        explicit = renewable_after is not None
        if renewable_after is None and lifetime is not None:
            renewable_after = default_renewable_after(lifetime)
        record = StoredAssignment(
            id,
            car.customer_id,
            car_id,
            user_id,
            _datetime_arg(start, "start"),
            None if end is None else _datetime_arg(end, "end"),
            lifetime,
            renewable_after,
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
        return sorted(
            (a for a in self.assignments.values() if a.customer_id == customer_id),
            key=lambda a: a.id,
        )

    def remove_car_assignments(self, car_id: int) -> list[StoredAssignment]:
        """Delete every assignment of ``car_id``, as flinkey does when the car's Box is
        uninstalled, and emit one (unsolicited) delete webhook payload per assignment, with
        the checksum of ``DELETE /assignments/{id}``. Returns the deleted assignments."""
        removed: list[StoredAssignment] = []
        for record in self.assignments_for_car(car_id):
            self.remove_assignment(record.id)
            removed.append(record)
        for record in removed:
            payload = delete_payload(
                delete_checksum(record.id), record.id, record.customer_id, record, None
            )
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
                self.add_car(
                    c["customerId"],
                    c["id"],
                    name=c["name"],
                    description=c.get("description"),
                    vin=c.get("vin"),
                    license_plate=c.get("licensePlate"),
                    brand=c.get("brand"),
                    model=c.get("model"),
                )
            for u in _items(data, "users"):
                user_data = u.get("userData") or {}
                self.add_user(
                    u["customerId"],
                    u["id"],
                    email=u["emailAddress"],
                    first_name=user_data.get("firstName"),
                    last_name=user_data.get("lastName"),
                )
            for a in _items(data, "assignments"):
                self.add_assignment(
                    a["carId"],
                    a.get("userId"),
                    a["start"],
                    a.get("end"),
                    lifetime=a.get("lifetime", DEFAULT_LIFETIME),
                    renewable_after=a.get("renewableAfter"),
                    id=a["id"],
                )
            self._load_more_records(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed fixture: {exc!r}") from None

    def _load_more_records(self, data: Mapping[str, Any]) -> None:
        """The fixture's products, services, events, groups and keyfob catalog."""
        for p in _items(data, "products"):
            if p.get("carId") is not None and self.get_car(p["carId"], p["customerId"]) is None:
                raise ValueError(f"product {p['id']}: car {p['carId']} is not of its customer")
            stamp = p.get("dongleTerminationTimeStamp")
            self.add(
                Product(
                    p["id"],
                    p["customerId"],
                    p["uniqueId"],
                    p["serialNumber"],
                    p["sapNumber"],
                    p["type"],
                    None if stamp is None else _datetime_arg(stamp, "dongleTerminationTimeStamp"),
                    p.get("carId"),
                )
            )
        for s in _items(data, "services"):
            product_id = s.get("productId")
            if product_id is not None and self.get(Product, product_id, s["customerId"]) is None:
                raise ValueError(f"service {s['id']}: product {product_id} is not of its customer")
            ended = s.get("terminationDate")
            self.add(
                Service(
                    s["id"],
                    s["customerId"],
                    s["name"],
                    s.get("isTerminated", False),
                    None if ended is None else _datetime_arg(ended, "terminationDate"),
                    s.get("terminationCause"),
                    product_id,
                )
            )
        for e in _items(data, "events"):
            self.add_event(
                e["carId"],
                e["userId"],
                e["utcDateTime"],
                date_time=e["dateTime"],
                event_type=e["type"],
                user_agent=e["userAgent"],
                latitude=e.get("latitude"),
                longitude=e.get("longitude"),
                id=e["id"],
            )
        for g in _items(data, "groups"):
            car_ids = tuple(g.get("carIds", ()))
            for car_id in car_ids:
                if self.get_car(car_id, g["customerId"]) is None:
                    raise ValueError(f"group {g['id']}: car {car_id} is not of its customer")
            self.add(Group(g["id"], g["customerId"], g["name"], car_ids))
        brands = data.get("brands", [])
        if not isinstance(brands, list):
            raise ValueError("fixture key 'brands' must be a list of strings")
        for brand in brands:
            self.add_brand(brand)
        for k in _items(data, "keyfobs"):
            form = k["keyForm"]
            self.add_keyfob(
                Keyfob(
                    k["id"],
                    k["brand"],
                    form["id"],
                    form["name"],
                    form["imageUrl"],
                    k.get("boxName"),
                    k.get("boxSapNumber"),
                )
            )

    def dump_fixture(self) -> dict[str, Any]:
        """The store's content in the fixture format (loadable by :meth:`load_fixture`).

        A ``renewableAfter`` that is the default (half the lifetime) is written as null, so it
        stays a default after loading."""
        return {
            "customers": [customer_wire(c) for c in _by_id(self.customers)],
            "cars": [{**car_wire(c), "customerId": c.customer_id} for c in _by_id(self.cars)],
            "users": [{**user_wire(u), "customerId": u.customer_id} for u in _by_id(self.users)],
            "assignments": [
                {
                    **assignment_wire(a),
                    "renewableAfter": a.renewable_after if a.renewable_after_explicit else None,
                }
                for a in _by_id(self.assignments)
            ],
            "products": [
                {**product_wire(p), "customerId": p.customer_id, "carId": p.car_id}
                for p in _by_id(self._table(Product))
            ],
            "services": [
                {**service_wire(s), "customerId": s.customer_id, "productId": s.product_id}
                for s in _by_id(self._table(Service))
            ],
            "events": [event_wire(e) for e in _by_id(self._table(Event))],
            "groups": [
                {**group_wire(g), "customerId": g.customer_id, "carIds": list(g.car_ids)}
                for g in _by_id(self._table(Group))
            ],
            "brands": list(self.brands),
            "keyfobs": [keyfob_wire(k) for k in _by_id(self.keyfobs)],
        }


_RecordT = TypeVar("_RecordT")


def _by_id(table: Mapping[int, _RecordT]) -> list[_RecordT]:
    return [table[i] for i in sorted(table)]


def _items(data: Mapping[str, Any], key: str) -> Iterable[Mapping[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ValueError(f"fixture key {key!r} must be a list of objects")
    return items
