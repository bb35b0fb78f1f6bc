"""A local emulator of the flinkey API v3, for tests, demos, benchmarks and CI.

The sandbox is an ``aiohttp.web`` application that behaves like the documented API: the OAuth2
password grant, the documented headers and error bodies, customers, cars, users and the six
assignment operations, with writes applied asynchronously and reported by webhook; events,
products, services, installations (an uninstalled Box takes the car's assignments with it,
reported by unsolicited delete webhooks), pairings, groups, the keyfob catalog and App SDK
tokens; OData query options on every GET the reference marks with the OData tip, an optional
rate limit, and injectable faults. It needs the
``odata-query`` package (extra ``flinkey_async[sandbox]``).

In a test::

    from flinkey_async.sandbox import Sandbox, SandboxConfig

    async with Sandbox(SandboxConfig(write_delay=0.01)) as sandbox:
        # sandbox.url is "http://127.0.0.1:PORT/v3"; credentials are in sandbox.config
        headers = sandbox.auth_headers(customer_id=1)   # API key, fresh token, Customer-ID
        ...
        await sandbox.drain()                           # queued writes applied, webhooks sent

Or serve it: ``await serve(SandboxConfig(...), "127.0.0.1", 8080)``; or hand ``make_app(config)``
to ``aiohttp.test_utils.TestServer``.

Public API:

* :class:`Sandbox` -- the running emulator: ``start(host, port) -> url``, ``stop()``,
  ``async with``, ``app``, ``store``, ``issue_token()``, ``expire_tokens()``,
  ``auth_headers()``, ``drain()``, ``outcomes``, ``deliveries`` (:class:`Delivery`; both
  bounded :class:`RecordLog` s), ``request_counts`` (requests received per route),
  ``webhook_url`` / ``webhook_secret``, ``faults`` and ``rate_limit`` (settable at run time).
* :class:`SandboxConfig` -- ``api_key``, ``username``, ``password``, ``sdk_key``,
  ``token_lifetime``, ``customer_ids``, ``write_delay``, ``webhook_url``, ``webhook_secret``,
  ``webhook_timeout``, ``rate_limit`` (:class:`RateLimit`), ``max_body_bytes``, ``faults``,
  ``seed``, ``fixture``, ``base_path``, ``max_tokens``, ``max_records``.
* :class:`SandboxStore` -- the data; ``add_customer``, ``add_car``, ``add_user``,
  ``add_assignment``, ``add_event``, ``get_*``, ``assignments_for_car``,
  ``assignments_for_user``, ``remove_car_assignments`` (an uninstall: deletes and unsolicited
  delete webhooks), ``brands``, ``add_brand``, ``add_keyfob``, ``load_fixture``,
  ``dump_fixture``; generically for any record of a customer (:class:`Product`,
  :class:`Service`, :class:`Event`, :class:`Group`, ...), ``add``, ``get``, ``replace`` and
  ``owned_by``.
* :class:`FaultConfig`, :class:`RouteFaults`, :class:`WebhookFaults` -- fault injection.
* :func:`make_app`, :func:`sandbox_of`, :func:`serve`.
* The texts the sandbox sends (:mod:`flinkey_async.sandbox.messages`), e.g.
  :data:`LIFETIME_OUT_OF_RANGE` or :data:`CAR_NOT_FOUND`.

The sandbox is a second, independent implementation of the API: from the SDK it imports only
:mod:`flinkey_async._wire` (header names, the wire datetime format, the JSON encoding, the id
range); its records, rules, payloads and timestamp handling are its own, so that end-to-end
tests compare two implementations. Its parts:

* :mod:`.server` -- :class:`Sandbox` (lifecycle, tokens), :func:`make_app`, :func:`serve`;
* :mod:`.middleware` -- the checks every request goes through (faults, API key, rate limit,
  token, ``Customer-ID``); :mod:`.responses` -- the answers and documented error bodies;
* :mod:`.routes` -- the route table and one module per resource;
* :mod:`.store` -- the data, and per resource its record, wire shape and OData schema;
* :mod:`.writes` -- the write queue, the assignment writes, and the synchronous writes naming
  a product (installations, pairings); :mod:`.outbox` -- webhooks;
* :mod:`.config`, :mod:`.faults`, :mod:`.odata_eval`, :mod:`.messages`.
"""

from __future__ import annotations

from . import messages
from .config import DEFAULT_FIXTURE, RateLimit, SandboxConfig
from .faults import FaultConfig, RouteFaults, WebhookFaults
from .messages import *  # noqa: F403 - every text, as listed in messages.__all__
from .odata_eval import ODataError
from .outbox import Delivery, RecordLog
from .server import SANDBOX_KEY, Sandbox, make_app, sandbox_of, serve
from .store import (
    Car,
    Customer,
    Event,
    Group,
    Keyfob,
    Product,
    SandboxStore,
    Service,
    StoredAssignment,
    User,
)

__all__ = [
    *messages.__all__,
    "DEFAULT_FIXTURE",
    "SANDBOX_KEY",
    "Car",
    "Customer",
    "Delivery",
    "Event",
    "FaultConfig",
    "Group",
    "Keyfob",
    "ODataError",
    "Product",
    "RateLimit",
    "RecordLog",
    "RouteFaults",
    "Sandbox",
    "SandboxConfig",
    "SandboxStore",
    "Service",
    "StoredAssignment",
    "User",
    "WebhookFaults",
    "make_app",
    "sandbox_of",
    "serve",
]
