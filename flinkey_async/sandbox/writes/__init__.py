"""Asynchronous writes: shape checks at request time, validation when applied.

flinkey answers ``PUT /assignments``, ``PATCH /assignments/{id}`` and
``DELETE /assignments/{id}`` with 204 at once and applies them later, reporting the outcome by
webhook. The sandbox mirrors that in two steps:

1. At request time the route checks only the *shape* of the body (valid JSON, an object or an
   array, field types: :mod:`.bodies` and the ``parse_*`` functions of :mod:`.assignments`); a
   :class:`~.bodies.BodyError` becomes a 400 answer whose text is ``str(error)``. A well-shaped
   write is put on the :class:`~.queue.WriteQueue` and answered with 204.
2. The queue applies writes one after the other, in arrival order, each ``write_delay`` seconds
   after it arrived: ``apply(store)`` validates against the data and returns the webhook
   payload, which goes to :attr:`Sandbox.outcomes` and the webhook outbox. A failed write
   changes nothing; its payload carries ``operationSucceeded: false`` and one of the
   ``errorMessage`` constants of :mod:`flinkey_async.sandbox.messages`.

Modules: :mod:`.queue` (the queue and what a write is), :mod:`.bodies` (generic JSON shape
checks), :mod:`.assignments` (the three assignment writes: their bodies, rules and payloads).

The installations and pairings are synchronous: :mod:`.products` checks and applies them at
request time, and the answer (204, or a :class:`~.bodies.Refusal`'s status and text) is their
outcome.
"""
