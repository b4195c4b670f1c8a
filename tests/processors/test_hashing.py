import hashlib

import pytest

from lineagehouse.processors.events import event_id
from lineagehouse.processors.hashing import blake2b


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4094, 4095, 5_000, 70_001])
@pytest.mark.parametrize("digest_size", [8, 16])
def test_digest_equals_hashlib_at_every_piece_boundary(size: int, digest_size: int) -> None:
    data = bytes((i * 131 + size) % 256 for i in range(size))
    expected = hashlib.blake2b(data, digest_size=digest_size).hexdigest()
    assert blake2b(data, digest_size).hexdigest() == expected


def test_event_identity_of_a_large_event_is_the_plain_blake2b_of_its_canonical_json() -> None:
    event = {"eventType": "COMPLETE", "run": {"runId": "r"}, "job": {"pad": "x" * 9_000}}
    pad = b"x" * 9_000
    canonical = b'{"eventType":"COMPLETE","job":{"pad":"' + pad + b'"},"run":{"runId":"r"}}'
    assert event_id(event).bytes == hashlib.blake2b(canonical, digest_size=16).digest()
