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
    "EVENT_NOT_FOUND",
    "GROUP_NOT_FOUND",
    "INSTALL_NO_VALID_CAR_ID",
    "INSTALL_NO_VALID_PRODUCT",
    "INTERNAL_SERVER_ERROR",
    "INVALID_API_KEY",
    "INVALID_BRAND",
    "INVALID_SDK_TOKEN_REQUEST",
    "INVALID_TOKEN",
    "LIFETIME_OUT_OF_RANGE",
    "MANAGER_NOT_FOUND",
    "PAIR_NO_VALID_PRODUCT",
    "PAIR_NO_VALID_SERVICE_ID",
    "PRODUCT_ALREADY_INSTALLED",
    "PRODUCT_ALREADY_PAIRED",
    "PRODUCT_HAS_NO_SERVICE",
    "PRODUCT_NOT_FOUND",
    "PRODUCT_NOT_INSTALLED",
    "PRODUCT_TYPE_ALREADY_INSTALLED",
    "RATE_LIMIT_TEMPLATE",
    "REMOVE_CAR_ID_NOT_ALLOWED",
    "REMOVE_START_NOT_ALLOWED",
    "RENEWABLE_AFTER_OUT_OF_RANGE",
    "SERVICE_ALREADY_PAIRED",
    "SERVICE_NOT_FOUND",
    "SERVICE_NOT_PAIRED",
    "UNINSTALL_NO_VALID_CAR_ID",
    "UNINSTALL_NO_VALID_PRODUCT",
    "UNPAIR_NO_VALID_PRODUCT",
    "UNPAIR_NO_VALID_SERVICE_ID",
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

#: 400 of ``PUT /installations`` without a valid ``carId`` (documented).
INSTALL_NO_VALID_CAR_ID = "Couldn't install product into car. No valid carId provided."
#: 400 of ``PUT /installations`` without a valid product identifier (documented).
INSTALL_NO_VALID_PRODUCT = (
    "Couldn't install product into car. No valid productId, serialNumber or uniqueId provided."
)
#: 404 of ``PUT /installations`` for a product the customer does not have (documented); the
#: sandbox also answers it to ``GET /products/{productId}``, ``DELETE /installations`` and the
#: pairings.
PRODUCT_NOT_FOUND = "Unable to find a product for the given productId, serialNumber or uniqueId."
#: 409 of ``PUT /installations`` (documented).
PRODUCT_ALREADY_INSTALLED = "The product is already installed into a car."
#: 409 of ``PUT /installations`` (documented).
PRODUCT_HAS_NO_SERVICE = "The product has no service assigned."
#: 409 of ``PUT /installations`` (documented, grammar included).
PRODUCT_TYPE_ALREADY_INSTALLED = "There is already installed a product of the same type in the car."
#: 400 of ``GET /brands/{brand}/keys`` for a brand not in the catalog (documented).
INVALID_BRAND = "Invalid brand provided."
#: 400 of ``POST /sdk/token`` (documented).
INVALID_SDK_TOKEN_REQUEST = "Invalid combination of customerId, sdkKey and userId."

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

# --- Answers the reference leaves open (not documented; the sandbox's own) --------------------
# ``DELETE /installations`` is documented by its heading only, the pairings without any error
# answer, and the GETs of products, services, events and groups with the manager's 404 only.

#: 404 of ``GET /events/{eventId}``.
EVENT_NOT_FOUND = "Unable to find an event for the given eventId."
#: 404 of ``GET /services/{serviceId}`` and of a pairing naming an unknown service.
SERVICE_NOT_FOUND = (
    "Unable to find a service for the given serviceId which is assigned to the given customerId."
)
#: 404 of ``GET /groups/{groupId}/cars``.
GROUP_NOT_FOUND = (
    "Unable to find a group for the given groupId which is assigned to the given customerId."
)
#: 400 of ``DELETE /installations`` without a valid ``carId``.
UNINSTALL_NO_VALID_CAR_ID = "Couldn't uninstall product from car. No valid carId provided."
#: 400 of ``DELETE /installations`` without a valid product identifier.
UNINSTALL_NO_VALID_PRODUCT = (
    "Couldn't uninstall product from car. No valid productId, serialNumber or uniqueId provided."
)
#: 409 of ``DELETE /installations`` for a product that is not in the given car.
PRODUCT_NOT_INSTALLED = "The product is not installed into the given car."
#: 400 of ``PUT /pairings`` without a valid ``serviceId``.
PAIR_NO_VALID_SERVICE_ID = "Couldn't pair service with product. No valid serviceId provided."
#: 400 of ``PUT /pairings`` without a valid product identifier.
PAIR_NO_VALID_PRODUCT = (
    "Couldn't pair service with product. No valid productId, serialNumber or uniqueId provided."
)
#: 400 of ``DELETE /pairings`` without a valid ``serviceId``.
UNPAIR_NO_VALID_SERVICE_ID = "Couldn't unlink service from product. No valid serviceId provided."
#: 400 of ``DELETE /pairings`` without a valid product identifier.
UNPAIR_NO_VALID_PRODUCT = (
    "Couldn't unlink service from product. No valid productId, serialNumber or uniqueId provided."
)
#: 409 of ``PUT /pairings``: the service already has a product.
SERVICE_ALREADY_PAIRED = "The service is already paired with a product."
#: 409 of ``PUT /pairings``: the product already has a service.
PRODUCT_ALREADY_PAIRED = "The product already has a service assigned."
#: 409 of ``DELETE /pairings``: the service is not paired with that product.
SERVICE_NOT_PAIRED = "The service is not paired with the given product."


def rate_limit_message(seconds: int) -> str:
    """The 429 ``message`` for a wait of ``seconds`` whole seconds."""
    return RATE_LIMIT_TEMPLATE.format(seconds=seconds)
