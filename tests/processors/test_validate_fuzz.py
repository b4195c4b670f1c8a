"""Seeded fuzz cases (tests/fuzz_cases.py) through `EventValidator.validate`.

Each case's expected verdict comes from how it was made, not from running the validator.
About half the cases must be accepted, so a validator that rejects everything (or accepts
everything) fails this test.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lineagehouse.processors.validate import EventValidator
from tests.fuzz_cases import MAX_BYTES, fuzz_cases

N = 6000


@pytest.mark.parametrize("seed", [1, 2024])
def test_fuzz_cases_get_their_expected_verdict(seed: int) -> None:
    cases = fuzz_cases(seed, N)
    expected = Counter(case.expect_accept for case in cases)
    assert min(expected.values()) > 0.4 * N, expected  # roughly half and half

    validator = EventValidator(max_bytes=MAX_BYTES)
    wrong = []
    for case in cases:
        verdict = validator.validate(case.value)
        if verdict.accepted != case.expect_accept:
            wrong.append((case.how, [p.message for p in verdict.errors][:3], case.value[:160]))
            continue
        if not verdict.accepted:
            assert verdict.errors, case.how
            for problem in verdict.errors:
                assert problem.path.startswith("$") and problem.message, case.how
        if case.how == "format_only":
            assert verdict.warnings, case.value[:300]
    assert not wrong, (len(wrong), wrong[:5])


def test_fuzz_cases_are_deterministic_and_varied() -> None:
    first, again = fuzz_cases(5, 400), fuzz_cases(5, 400)
    assert first == again
    assert len({case.how for case in first}) >= 15
    assert fuzz_cases(6, 50) != first[:50]
