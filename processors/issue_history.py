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
    facts: dict[str, tuple[tuple, Any]] = field(default_factory=dict)  # run id -> (order, fact)
    written: dict[str, Issue] = field(default_factory=dict)  # issue id -> as last written
    judged: bool = False  # the rules have seen these facts since they last changed


class HistoryCache:
    """Per subject, its latest `limit` facts, ordered by `order(fact)`: a tuple ending
    with the fact's run id (unique within a subject), such as (time, run id).

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

    def fresh(self, subject: Hashable, now: float) -> bool:
        """Whether `subject`'s history is known and younger than the time to live."""
        entry = self._entries.get(subject)
        if entry is None or now - entry.loaded_at >= self._ttl_s:
            return False
        self._entries.move_to_end(subject)
        return True

    def load(self, subject: Hashable, facts: Iterable[tuple[str, Any]], now: float) -> None:
        """Replace what is known of `subject` by its history as read whole."""
        order = self._order
        entry = _Entry(now, {run_id: (order(fact), fact) for run_id, fact in facts})
        self._entries[subject] = entry
        self._entries.move_to_end(subject)

    def update(self, subject: Hashable, changed: dict[str, Any]) -> None:
        """Apply the facts of the runs a batch touched (None: the run is not a fact)."""
        entry = self._entries[subject]
        facts = entry.facts
        for run_id, fact in changed.items():
            known = facts.get(run_id)
            if fact is None:
                if known is not None:
                    del facts[run_id]
                    entry.judged = False
            elif known is None or known[1] != fact:
                facts[run_id] = (self._order(fact), fact)
                entry.judged = False

    def changed(self, subject: Hashable) -> bool:
        """Whether the facts changed since the issues of them were last written (the rules
        are pure: the same facts give the same issues)."""
        return not self._entries[subject].judged

    def facts(self, subject: Hashable) -> list[Any]:
        """The latest `limit` facts of `subject`, oldest first (older ones are dropped)."""
        entry = self._entries[subject]
        ordered = sorted(entry.facts.values())  # by order: unique, so facts never compare
        if len(ordered) > self.limit:
            for key, _ in ordered[: -self.limit]:
                del entry.facts[key[-1]]
            ordered = ordered[-self.limit :]
        return [fact for _, fact in ordered]

    def unwritten(self, subject: Hashable, issues: Iterable[Issue]) -> list[Issue]:
        """The issues not written yet for `subject`, or written with other content."""
        written = self._entries[subject].written
        return [issue for issue in issues if written.get(issue.issue_id) != issue]

    def mark_written(self, subject: Hashable, issues: Iterable[Issue]) -> None:
        """The issues of `subject`'s current facts that were not written yet are now."""
        entry = self._entries.get(subject)
        if entry is not None:
            entry.written.update((issue.issue_id, issue) for issue in issues)
            entry.judged = True

    def trim(self) -> None:
        """Forget the least recently touched subjects beyond `max_subjects`."""
        while len(self._entries) > self._max_subjects:
            self._entries.popitem(last=False)

    def forget(self, subject: Hashable) -> None:
        """Drop what is known of `subject`: it is read whole when next touched."""
        self._entries.pop(subject, None)

    def clear(self) -> None:
        self._entries.clear()
