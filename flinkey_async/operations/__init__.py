"""Asynchronous writes: what was sent, and its real outcome (:class:`PendingOperation`)."""

from .pending import (
    Event,
    OperationKind,
    OperationOutcome,
    OperationState,
    PendingOperation,
    Probe,
    Tracker,
    body_checksum,
)

__all__ = [
    "Event",
    "OperationKind",
    "OperationOutcome",
    "OperationState",
    "Tracker",
    "PendingOperation",
    "Probe",
    "body_checksum",
]
