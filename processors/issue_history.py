"""Pure: what the issues stage remembers of each subject between batches.

A subject is a job, a check on a dataset (column) or an output dataset; its facts are
its latest finished runs, check results or written schemas, one per run id. Reading a
subject's whole history from ClickHouse for every batch costs more the longer the
history grows and the more subjects a batch touches (BENCHMARKS.md). So the stage reads a
subject's history once (`load`), and for each later batch only the facts of the runs the
batch touched (`update`): the rows of untouched runs have not changed, because a
subject's derived records all reach one issues-stage process (events are keyed by job,
and the stage forgets everything when its partitions are reassigned). A subject is read
whole again once it is `ttl_s` old, which bounds how long a change made some other way
(a replay, an emitter keying events its own way) can go unseen.

It also remembers which issues were written for each subject, so a batch writes only
the issues that are new or changed instead of every issue in the history.

Imports nothing from Kafka or ClickHouse.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lineagehouse.processors.issues import Issue


@dataclass
class _Entry:
    loaded_at: float
    facts: dict[str, Any] = field(default_factory=dict)  # run id -> fact
    written: dict[str, Issue] = field(default_factory=dict)  # issue id -> as last written


class HistoryCache:
    """Per subject, its latest `limit` facts, ordered by `order(fact)` (time, run id).

    `max_subjects` bounds the memory (least recently touched subjects are forgotten
    first); 0 keeps nothing between batches, so every batch reads every history whole.
    """

    def __init__(
        self,
        limit: int,
        order: Callable[[Any], tuple],
        max_subjects: int,
        ttl_s: float,
    ) -> None:
        self.limit = limit
        self._order = order
        self._max_subjects = max_subjects
        self._ttl_s = ttl_s
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, subject: Hashable, now: float) -> bool:
        """Whether `subject`'s history is known and younger than the time to live."""
        entry = self._entries.get(subject)
        if entry is None or now - entry.loaded_at >= self._ttl_s:
            return False
        self._entries.move_to_end(subject)
        return True

    def load(self, subject: Hashable, facts: Iterable[tuple[str, Any]], now: float) -> None:
        """Replace what is known of `subject` by its history as read whole."""
        self._entries[subject] = _Entry(now, dict(facts))
        self._entries.move_to_end(subject)

    def update(self, subject: Hashable, changed: dict[str, Any]) -> None:
        """Apply the facts of the runs a batch touched (None: the run is not a fact)."""
        facts = self._entries[subject].facts
        for run_id, fact in changed.items():
            if fact is None:
                facts.pop(run_id, None)
            else:
                facts[run_id] = fact

    def facts(self, subject: Hashable) -> list[Any]:
        """The latest `limit` facts of `subject`, oldest first (older ones are dropped)."""
        facts = self._entries[subject].facts
        ordered = sorted(facts.values(), key=self._order)
        if len(ordered) > self.limit:
            order = self._order
            keep = {order(fact) for fact in ordered[-self.limit :]}
            for run_id in [r for r, fact in facts.items() if order(fact) not in keep]:
                del facts[run_id]
            ordered = ordered[-self.limit :]
        return ordered

    def unwritten(self, subject: Hashable, issues: Iterable[Issue]) -> list[Issue]:
        """The issues not written yet for `subject`, or written with other content."""
        written = self._entries[subject].written
        return [issue for issue in issues if written.get(issue.issue_id) != issue]

    def mark_written(self, subject: Hashable, issues: Iterable[Issue]) -> None:
        entry = self._entries.get(subject)
        if entry is not None:
            entry.written.update((issue.issue_id, issue) for issue in issues)

    def trim(self) -> None:
        """Forget the least recently touched subjects beyond `max_subjects`."""
        while len(self._entries) > self._max_subjects:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
