"""The vendored OData ABNF file is the OASIS file, unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.abnf import VENDORED_RULES

#: SHA-256 of odata-abnf-construction-rules.txt at OASIS odata-abnf commit e7790a5.
OASIS_SHA256 = "35e515ebe62a273f2fe28da289bf9426a933338b958b6b75bc7030810d44ab5c"
#: Where the reference copy lies beside a checkout, when it does.
REFERENCE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "oracles"
    / "odata-abnf"
    / "odata-abnf-construction-rules.txt"
)


def test_vendored_grammar_is_the_published_file() -> None:
    data = VENDORED_RULES.read_bytes()
    assert hashlib.sha256(data).hexdigest() == OASIS_SHA256
    if REFERENCE.exists():
        assert data == REFERENCE.read_bytes()
