"""Asynchronous writes: what was sent, and (with a tracker or polling) its real outcome.

flinkey answers ``PUT``/``PATCH``/``DELETE /assignments`` with 204 and applies the write later;
the outcome arrives by webhook. Every write method returns a :class:`PendingOperation` that
records exactly what was sent.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = ["OperationKind", "PendingOperation", "body_checksum"]

OperationKind = Literal["create", "update", "delete"]


def body_checksum(data: bytes) -> str:
    """MD5 of the exact bytes sent, as 32 upper-case hex digits: flinkey documents its webhook
    ``checksum`` as "a hash value generated from the payload of the initial request" without
    saying which bytes; this is the SDK's best guess and is used only as a hint."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


@attrs.frozen
class PendingOperation:
    """A write flinkey accepted (204) and will apply asynchronously.

    Attributes:
        kind: ``"create"``, ``"update"`` or ``"delete"``.
        customer_id: the ``Customer-ID`` it was sent for.
        assignment_id: the assignment updated or deleted (``None`` for a create: flinkey
            assigns the id later and reports it in the webhook).
        car_id, user_id, start, end: for a create, the values sent (they identify the
            confirmation webhook); for an update, those the patch replaces, else ``None``.
        body: the JSON body sent (``None`` for a delete).
        checksum: MD5 (upper-case hex) of the body bytes sent, a hint for correlation.
        sent_at: when the request was sent (aware UTC).
    """

    kind: OperationKind
    customer_id: int
    assignment_id: int | None
    body: Any
    checksum: str
    sent_at: datetime
    car_id: int | None = None
    user_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def describe(self) -> str:
        """A short human description, e.g. ``create of an assignment (car 7, user 9)``."""
        if self.kind == "create":
            return f"create of an assignment (car {self.car_id}, user {self.user_id})"
        return f"{self.kind} of assignment {self.assignment_id}"
