"""Kept freed memory (`lineagehouse.memory`, `_memory.c`): a second batch reuses what the
first one freed instead of faulting in fresh pages. Each case runs in a process of its
own: the allocator it installs is for the whole process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from lineagehouse.processors.records import NATIVE

MIB = 1024 * 1024

BATCHES = """
import json, resource, sys
from lineagehouse.memory import keep_freed_memory, kept_memory

installed = keep_freed_memory(int(sys.argv[1]))


def batch() -> int:
    # What a processor batch makes and frees: many small objects, and large buffers.
    objects = [{"name": f"col_{i}", "values": [i, i + 1]} for i in range(150_000)]
    buffers = [bytes(2_000_000) for _ in range(16)]
    return len(objects) + len(buffers)


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


first = faults()
batch()
second = faults()
batch()
print(json.dumps({
    "installed": installed,
    "first": second - first,
    "second": faults() - second,
    "kept": kept_memory(),
}))
"""


def run_batches(max_mb: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", BATCHES, str(max_mb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_c_module_is_built() -> None:
    assert NATIVE  # otherwise nothing is kept and the tests below say so too


def test_a_second_batch_reuses_the_memory_the_first_freed() -> None:
    kept = run_batches(256)
    returned = run_batches(0)
    assert kept["installed"] is True
    assert returned["installed"] is False
    assert returned["kept"] == [0, 0]
    # Without keeping, the second batch faults in about as many pages as the first.
    assert returned["second"] > returned["first"] / 2 > 1_000
    # Kept, it reuses them: a small fraction of those faults.
    assert kept["second"] < returned["second"] / 5
    kept_bytes, limit = kept["kept"]
    assert limit == 256 * MIB
    assert 0 < kept_bytes <= limit  # the batch's empty arenas wait for the next one


def test_no_more_than_the_limit_is_kept() -> None:
    small = run_batches(4)
    kept_bytes, limit = small["kept"]
    assert limit == 4 * MIB
    assert 0 < kept_bytes <= 4 * MIB
