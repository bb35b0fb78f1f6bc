"""RetryPolicy decisions (pure): never duplicate a write, honour Retry-After."""

from __future__ import annotations

import random

import pytest

from flinkey_async.retry import Failure, RetryPolicy

P = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=8, max_retry_after=60, jitter=0)


@pytest.mark.parametrize(
    ("method", "failure", "retry"),
    [
        ("GET", 429, True),
        ("PUT", 429, True),
        ("PATCH", 429, True),
        ("DELETE", 429, True),
        ("GET", "connect", True),
        ("PUT", "connect", True),
        ("GET", 500, True),
        ("GET", 502, True),
        ("GET", 503, True),
        ("GET", 504, True),
        ("GET", 408, True),
        ("GET", "timeout", True),
        ("GET", "disconnect", True),
        ("PUT", 500, False),
        ("PUT", 503, False),
        ("PATCH", 502, False),
        ("DELETE", 504, False),
        ("PUT", "timeout", False),
        ("PATCH", "disconnect", False),
        ("DELETE", "timeout", False),
        ("GET", 400, False),
        ("GET", 401, False),
        ("GET", 404, False),
        ("GET", 409, False),
        ("GET", 415, False),
        ("POST", 500, False),
    ],
)
def test_retryable_table(method: str, failure: Failure, retry: bool) -> None:
    assert P.is_retryable(method, failure) is retry
    assert (P.delay(method, failure, 1) is not None) is retry


def test_exponential_backoff_capped() -> None:
    assert [P.delay("GET", 503, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    capped = RetryPolicy(max_retries=10, backoff_base=1, backoff_max=5, jitter=0)
    assert capped.delay("GET", 503, 8) == 5


def test_gives_up_after_max_retries() -> None:
    assert P.delay("GET", 503, 4) is None
    assert RetryPolicy.disabled().delay("GET", 429, 1, 1.0) is None


def test_retry_after_honoured_and_capped() -> None:
    assert P.delay("PUT", 429, 1, retry_after=7) == 7
    assert P.delay("PUT", 429, 1, retry_after=61) is None


def test_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(backoff_base=1, jitter=0.5)
    rng = random.Random(1)
    values = [p.delay("GET", 503, 1, rng=rng) for _ in range(200)]
    assert all(v is not None and 0.5 <= v <= 1.0 for v in values)
    assert len(set(values)) > 100


def test_invalid_policy_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)
