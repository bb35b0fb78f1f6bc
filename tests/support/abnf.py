"""The official OASIS OData ABNF (construction rules 4.01) as a test oracle.

The grammar file describes the wire form of OData URLs. It is loaded once per test session
(it takes several seconds) with the ``abnf`` package, from the unchanged copy in
``tests/oracles/odata-abnf/``; the environment variable ``ODATA_ABNF_RULES`` names another copy.

One correction is applied in memory, to the rule ``pct-encoded-no-SQUOTE`` (the characters
allowed percent-encoded inside a string literal). The published rule reads::

    pct-encoded-no-SQUOTE =
        "%" ( "0" / "1" /   "3" / "4" / "5" / "6" / "8" / "9" / A-to-F ) HEXDIG
      / "%" "2" ( "0" / "1" / "2" / "3" / "4" / "5" / "6" /   "8" / "9" / A-to-F )

Its purpose is to exclude ``%27`` (an encoded quote). The first line also leaves out every
``%7X``, so ``{``, ``|``, ``}`` and DEL, which RFC 3986 does not allow unencoded in a query,
could not appear in a string literal at all. ``%7X`` is a plain ``pct-encoded`` everywhere else
in the grammar, and parsers built from it (e.g. odata-v4-parser) exclude only ``%27``. The
correction adds ``"7"`` to the first line; :func:`published_rule_rejects` shows the published
rule's behaviour, and the conformance tests check that ``%27`` inside a literal stays rejected.
"""

from __future__ import annotations

import functools
import operator
import os
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from abnf import Rule
from abnf.parser import ParseError
from hypothesis import strategies as st

from flinkey_async.odata import Expr, F

__all__ = [
    "FIELD_NAMES",
    "RULES_PATH",
    "aware_datetimes",
    "expressions",
    "grammar",
    "literal_values",
    "parses",
    "published_rule_rejects",
]

#: An unchanged copy of the OASIS file (see tests/conformance/oracles/odata-abnf/README.md), so
#: that the conformance tests run on any machine.
VENDORED_RULES = (
    Path(__file__).parent.parent
    / "conformance"
    / "oracles"
    / "odata-abnf"
    / "odata-abnf-construction-rules.txt"
)
RULES_PATH = Path(os.environ.get("ODATA_ABNF_RULES", VENDORED_RULES))

# RFC 5234 core rules the file redefines; the abnf package provides them itself.
_CORE = re.compile(r"^(ALPHA|DIGIT|HEXDIG|DQUOTE|SP|HTAB|VCHAR)\s*=.*$", re.M)
_PUBLISHED = re.compile(
    r'^(pct-encoded-no-SQUOTE = "%" \( "0" / "1" / +"3" / "4" / "5" / "6" / )("8" / "9")', re.M
)


class _OData(Rule):
    """Rules of the OData ABNF (with the correction above)."""


class _PublishedRule(Rule):
    """Only ``pct-encoded-no-SQUOTE`` as published, to show what the correction changes."""


@functools.cache
def grammar() -> type[Rule]:
    """The loaded grammar (once per process)."""
    text = RULES_PATH.read_text(encoding="utf-8")
    corrected, count = _PUBLISHED.subn(r'\1"7" / \2', text)
    if count != 1:
        raise RuntimeError(f"pct-encoded-no-SQUOTE not found as published in {RULES_PATH}")
    _OData.load_grammar(_CORE.sub("", corrected))
    return _OData


def parses(rule: str, text: str) -> bool:
    """Whether ``text`` matches ``rule`` completely."""
    try:
        found = grammar().get(rule)
        assert found is not None, rule
        found.parse_all(text)
    except ParseError:
        return False
    return True


_RULE_BLOCK = re.compile(r"^(pct-encoded-no-SQUOTE|A-to-F) *=.*(?:\r?\n[ \t]+/.*)*", re.M)


@functools.cache
def _published() -> type[Rule]:
    text = RULES_PATH.read_text(encoding="utf-8")
    blocks = [m.group(0).replace("\r", "") for m in _RULE_BLOCK.finditer(text)]
    if len(blocks) != 2:
        raise RuntimeError(f"pct-encoded-no-SQUOTE / A-to-F not found in {RULES_PATH}")
    _PublishedRule.load_grammar("\n".join(blocks) + "\n")
    return _PublishedRule


def published_rule_rejects(encoded: str) -> bool:
    """Whether the published ``pct-encoded-no-SQUOTE`` rejects ``encoded`` (e.g. ``"%7C"``)."""
    try:
        found = _published().get("pct-encoded-no-SQUOTE")
        assert found is not None
        found.parse_all(encoded)
    except ParseError:
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies shared by the OData tests
# ---------------------------------------------------------------------------------------------

#: Field names used in generated filters (realistic flinkey wire names).
FIELD_NAMES = (
    "carId",
    "userId",
    "start",
    "end",
    "lifetime",
    "renewableAfter",
    "name",
    "id",
    "licensePlate",
    "description",
)
_BOOLEAN_FIELDS = ("active", "isLocked")

_ZONES = (
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=8)),
    timezone(timedelta(hours=14)),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
)

#: Aware datetimes in many zones (years 1000-9999 after conversion to UTC).
aware_datetimes = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(_ZONES),
)

#: Every kind of value a filter literal can be.
literal_values: st.SearchStrategy[Any] = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    aware_datetimes,
    st.dates(min_value=date(1000, 1, 1)),
    st.uuids(),
)

_fields = st.sampled_from(FIELD_NAMES).map(lambda name: F[name])
_COMPARISONS = (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)


def _leaves() -> st.SearchStrategy[Expr]:
    comparison = st.builds(
        lambda op, field, value: op(field, value),
        st.sampled_from(_COMPARISONS),
        _fields,
        literal_values,
    )
    field_to_field = st.builds(
        lambda op, left, right: op(left, right), st.sampled_from(_COMPARISONS), _fields, _fields
    )
    call = st.builds(
        lambda method, field, text: getattr(field, method)(text),
        st.sampled_from(("contains", "startswith", "endswith")),
        _fields,
        st.text(),
    )
    membership = st.builds(
        lambda field, values: field.in_(values),
        _fields,
        st.lists(literal_values, min_size=1, max_size=4),
    )
    boolean_field = st.sampled_from(_BOOLEAN_FIELDS).map(lambda name: F[name].ref)
    return st.one_of(comparison, field_to_field, call, membership, boolean_field)


#: Filter expressions: random trees of and/or/not over every kind of leaf.
expressions: st.SearchStrategy[Expr] = st.recursive(
    _leaves(),
    lambda children: st.one_of(
        st.builds(operator.and_, children, children),
        st.builds(operator.or_, children, children),
        st.builds(operator.invert, children),
    ),
    max_leaves=8,
)
