"""Fault injection: make the sandbox misbehave on purpose, reproducibly.

A :class:`FaultConfig` maps route keys to :class:`RouteFaults` and holds the
:class:`WebhookFaults`::

    FaultConfig(
        routes={
            "GET /cars/{carId}/assignments": RouteFaults(rate_limit=0.2, latency=(0.01, 0.05)),
            "PUT /assignments": RouteFaults(server_error=0.1, reset_after=0.05),
            "*": RouteFaults(reset=0.01),
        },
        webhooks=WebhookFaults(duplicate=0.1, drop=0.05),
        seed=1234,
    )

Route keys name the documented path template without the base path: ``"METHOD /template"``,
``"/template"`` (any method), ``"METHOD *"`` (any path) or ``"*"`` (everything). The most specific
key wins, in that order. Every decision comes from one ``random.Random(seed)``; each request
draws the same number of values whatever the outcome, so a sequence of requests (or webhook
deliveries) made one after the other sees the same faults in every run with the same seed.

Request faults are applied before any other check (like a failing gateway): first the added
latency, then a connection reset (the connection is closed without an answer), an injected
429 (``Retry-After: retry_after``) or an injected 500 (``Internal server error.``), tried in
that order. The last kind, ``reset_after``, lets the request through instead and closes the
connection *after* the sandbox has handled it, without sending the answer: a write
(``PUT``/``PATCH``/``DELETE``) is accepted and queued exactly as if it had succeeded (it is
applied and reported by webhook), a ``GET`` has its answer computed, and the client sees a
broken connection all the same -- the case of a lost response to a request the server did
carry out. Each request draws six random values, whatever the outcome.
Webhook faults: ``delay`` (the delivery is sent ``delay_seconds`` later, so it can overtake or
be overtaken by others), ``duplicate`` (delivered twice) and ``drop`` (never delivered, recorded
as dropped).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "FaultAction",
    "FaultConfig",
    "FaultInjector",
    "RequestFault",
    "RouteFaults",
    "WebhookFault",
    "WebhookFaults",
]


def _probability(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} is a probability in [0, 1], got {value!r}")


def _pair(value: Iterable[float]) -> tuple[float, float]:
    low, high = value
    return float(low), float(high)


def _seconds_range(
    _instance: object,
    attribute: attrs.Attribute[tuple[float, float]],
    value: tuple[float, float],
) -> None:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low <= high):
        raise ValueError(
            f"{attribute.name} must be finite (low, high) seconds with 0 <= low <= high, "
            f"got {value!r}"
        )


@attrs.frozen
class RouteFaults:
    """Faults of the requests matching one route key (probabilities in ``[0, 1]``).

    Attributes:
        rate_limit: probability of an injected 429.
        server_error: probability of an injected 500.
        reset: probability of closing the connection without an answer, before the request
            is handled (a write is not applied).
        reset_after: probability of handling the request and then closing the connection
            without sending the answer: a write is queued as if it had succeeded (it is applied
            and reported by webhook), but the client gets no answer.
        latency: ``(low, high)`` seconds added before answering (uniformly drawn).
        latency_probability: probability that ``latency`` applies to a request.
        retry_after: the ``Retry-After`` (seconds, >= 1) of injected 429 answers.
    """

    rate_limit: float = attrs.field(default=0.0, validator=_probability)
    server_error: float = attrs.field(default=0.0, validator=_probability)
    reset: float = attrs.field(default=0.0, validator=_probability)
    reset_after: float = attrs.field(default=0.0, validator=_probability)
    latency: tuple[float, float] = attrs.field(
        default=(0.0, 0.0), converter=_pair, validator=_seconds_range
    )
    latency_probability: float = attrs.field(default=1.0, validator=_probability)
    retry_after: int = attrs.field(default=1, validator=attrs.validators.ge(1))


@attrs.frozen
class WebhookFaults:
    """Faults of webhook deliveries (probabilities in ``[0, 1]``).

    Attributes:
        delay: probability that a delivery is sent later, after ``delay_seconds``.
        delay_seconds: ``(low, high)`` extra seconds of a delayed delivery.
        duplicate: probability that a delivery is sent twice.
        drop: probability that a delivery is never sent.
    """

    delay: float = attrs.field(default=0.0, validator=_probability)
    delay_seconds: tuple[float, float] = attrs.field(
        default=(0.05, 0.25), converter=_pair, validator=_seconds_range
    )
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    drop: float = attrs.field(default=0.0, validator=_probability)


def _routes(value: Mapping[str, RouteFaults]) -> Mapping[str, RouteFaults]:
    return dict(value)


@attrs.frozen
class FaultConfig:
    """Which faults to inject where; ``seed`` (else the sandbox's seed) makes them repeatable."""

    routes: Mapping[str, RouteFaults] = attrs.field(factory=dict, converter=_routes)
    webhooks: WebhookFaults = WebhookFaults()
    seed: int | None = None

    @classmethod
    def everywhere(
        cls, *, seed: int | None = None, webhooks: WebhookFaults | None = None, **faults: Any
    ) -> FaultConfig:
        """The same :class:`RouteFaults` (given as keyword arguments) on every route."""
        return cls({"*": RouteFaults(**faults)}, webhooks or WebhookFaults(), seed)

    def for_route(self, method: str, template: str) -> RouteFaults | None:
        """The faults of ``method template`` (most specific key first), or None."""
        for key in (f"{method} {template}", template, f"{method} *", "*"):
            faults = self.routes.get(key)
            if faults is not None:
                return faults
        return None


#: What an injected request fault does (see :class:`RequestFault`).
FaultAction = Literal["reset", "rate_limit", "server_error", "reset_after"]


@attrs.frozen
class RequestFault:
    """What to do to one request: sleep ``latency`` seconds, then ``action`` (if any).

    ``"reset_after"`` means: handle the request, then close the connection without the answer.
    """

    latency: float
    action: FaultAction | None
    retry_after: int = 1


@attrs.frozen
class WebhookFault:
    """What to do to one webhook delivery."""

    drop: bool = False
    duplicate: bool = False
    delay: float = 0.0


class FaultInjector:
    """Draws fault decisions from one seeded ``random.Random``."""

    def __init__(self, config: FaultConfig | None, default_seed: int | None = None) -> None:
        self.config = config
        seed = config.seed if config is not None and config.seed is not None else default_seed
        self.random = random.Random(seed)
        self._routes: dict[tuple[str, str], RouteFaults | None] = {}
        webhooks = config.webhooks if config is not None else WebhookFaults()
        self._webhooks = webhooks
        #: False when no request fault is configured (the hot path skips the injector).
        self.active = config is not None and bool(config.routes)
        self.webhooks_active = webhooks.delay > 0 or webhooks.duplicate > 0 or webhooks.drop > 0

    def decide(self, method: str, template: str) -> RequestFault | None:
        """The fault of one request, or None when its route has no faults configured."""
        if self.config is None:
            return None
        key = (method, template)
        if key not in self._routes:
            self._routes[key] = self.config.for_route(method, template)
        faults = self._routes[key]
        if faults is None:
            return None
        rnd = self.random.random
        latency_hit, latency_value, reset, limited, failed = rnd(), rnd(), rnd(), rnd(), rnd()
        reset_after = rnd()
        low, high = faults.latency
        latency = (
            low + (high - low) * latency_value if latency_hit < faults.latency_probability else 0.0
        )
        action: FaultAction | None = None
        if reset < faults.reset:
            action = "reset"
        elif limited < faults.rate_limit:
            action = "rate_limit"
        elif failed < faults.server_error:
            action = "server_error"
        elif reset_after < faults.reset_after:
            action = "reset_after"
        return RequestFault(latency, action, faults.retry_after)

    def decide_webhook(self) -> WebhookFault:
        """The fault of one webhook delivery."""
        if not self.webhooks_active:
            return WebhookFault()
        faults = self._webhooks
        rnd = self.random.random
        drop, duplicate, delayed, delay_value = rnd(), rnd(), rnd(), rnd()
        low, high = faults.delay_seconds
        return WebhookFault(
            drop=drop < faults.drop,
            duplicate=duplicate < faults.duplicate,
            delay=low + (high - low) * delay_value if delayed < faults.delay else 0.0,
        )
