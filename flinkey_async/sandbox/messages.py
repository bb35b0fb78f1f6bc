"""Every text the sandbox sends, as constants tests (and users' tests) can import.

Texts marked *documented* are copied from the flinkey API v3 reference. The others fill gaps the
reference leaves open (the ``errorMessage`` strings of failed asynchronous writes, the wording of
400 answers); they are stable: changing one is a breaking change of the sandbox.
"""

from __future__ import annotations

from .store.assignments import MAX_LIFETIME, MIN_LIFETIME

__all__ = [
    "ASSIGNMENT_NOT_FOUND",
    "CAR_NOT_FOUND",
    "END_NOT_AFTER_START",
    "INTERNAL_SERVER_ERROR",
    "INVALID_API_KEY",
    "INVALID_TOKEN",
    "LIFETIME_OUT_OF_RANGE",
    "MANAGER_NOT_FOUND",
    "RATE_LIMIT_TEMPLATE",
    "REMOVE_CAR_ID_NOT_ALLOWED",
    "REMOVE_START_NOT_ALLOWED",
    "RENEWABLE_AFTER_OUT_OF_RANGE",
    "USER_NOT_FOUND",
    "rate_limit_message",
]

# --- Documented texts -------------------------------------------------------------------------

#: 401 ``message`` when ``flinkey-API-Key`` is missing or wrong (documented).
INVALID_API_KEY = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
#: 401 ``message`` when the bearer token is missing, unknown or expired (documented).
INVALID_TOKEN = "Unauthorized. Access token is missing or invalid."
#: 404 text when ``Customer-ID`` is missing, not an integer or not a customer of the manager
#: (documented).
MANAGER_NOT_FOUND = "Unable to find a manager for the given OAuth ID claim data."
#: 404 text of ``GET /assignments/{id}``; also the ``errorMessage`` of a PATCH or DELETE of an
#: assignment that does not exist (documented as the 404 text).
ASSIGNMENT_NOT_FOUND = "Unable to find an assignment for the given assignmentId."
#: 404 text of ``GET /cars/{carId}...``; also the ``errorMessage`` when a write names a car the
#: customer does not have (documented as the 404 text).
CAR_NOT_FOUND = (
    "Unable to find a car for the given carId which is assigned to the given customerId."
)
#: 404 text of ``GET /users/{userId}...``; also the ``errorMessage`` when a write names a user the
#: customer does not have (documented as the 404 text, grammar included).
USER_NOT_FOUND = (
    "Unable to find an user for the given userId which is assigned to the given customerId."
)
#: 500 text (documented).
INTERNAL_SERVER_ERROR = "Internal server error."
#: 429 ``message``; ``{seconds}`` is the whole number of seconds to wait (documented with "x").
RATE_LIMIT_TEMPLATE = "Rate limit is exceeded. Try again in {seconds} seconds."

# --- errorMessage texts of failed asynchronous writes (not documented; the sandbox's own) ------

#: ``lifetime`` outside ``MIN_LIFETIME..MAX_LIFETIME`` (both inclusive).
LIFETIME_OUT_OF_RANGE = f"The lifetime must be between {MIN_LIFETIME} and {MAX_LIFETIME} seconds."
#: ``renewableAfter`` not in ``0 < renewableAfter < lifetime``.
RENEWABLE_AFTER_OUT_OF_RANGE = (
    "The renewableAfter must be greater than 0 and less than the lifetime."
)
#: ``end`` is not after ``start``.
END_NOT_AFTER_START = "The end must be after the start."
#: A PATCH removed (or replaced with null) ``/carId``.
REMOVE_CAR_ID_NOT_ALLOWED = "The carId of an assignment cannot be removed."
#: A PATCH removed (or replaced with null) ``/start``.
REMOVE_START_NOT_ALLOWED = "The start of an assignment cannot be removed."


def rate_limit_message(seconds: int) -> str:
    """The 429 ``message`` for a wait of ``seconds`` whole seconds."""
    return RATE_LIMIT_TEMPLATE.format(seconds=seconds)
