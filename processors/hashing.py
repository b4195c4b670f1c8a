"""BLAKE2b digests that keep the GIL.

hashlib releases the GIL while it hashes 2,048 bytes or more. In a worker whose stages
share one process that is a loss, not a gain: hashing a 5 KB event takes ~3 us, but
taking the GIL back after releasing it waits for whichever thread took it meanwhile
(py-spy found ~20% of the processor thread's samples there; BENCHMARKS.md). Fed in
smaller pieces, the digest is the same and the thread keeps the GIL.
"""

from __future__ import annotations

import hashlib

_UNDER_GIL_RELEASE = 2047  # hashlib's threshold (HASHLIB_GIL_MINSIZE) is 2048


def blake2b(data: bytes, digest_size: int) -> hashlib.blake2b:
    """`hashlib.blake2b(data, digest_size=...)`, without releasing the GIL."""
    digest = hashlib.blake2b(digest_size=digest_size)
    if len(data) < _UNDER_GIL_RELEASE:
        digest.update(data)
        return digest
    view = memoryview(data)
    for start in range(0, len(view), _UNDER_GIL_RELEASE):
        digest.update(view[start : start + _UNDER_GIL_RELEASE])
    return digest
