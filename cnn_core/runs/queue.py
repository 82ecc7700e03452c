"""FairQueue: the waiting runs, served in fair turns between their owners instead of first come, first served.

The next run to start is the oldest waiting run of the owner served least recently (an owner never served yet
comes first, in order of arrival), among the owners that may start one now; the runs of `priority` owners
(the teacher's) go before everyone's. So when thirty students press Train at once each gets a first run before
anyone gets a second. Runs without an owner (one person on their own machine) are one owner: first come, first
served. Not thread-safe by itself: the JobManager holds its lock around every call.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

Owner = str | None


class FairQueue:
    def __init__(self) -> None:
        self._runs: dict[Owner, deque[str]] = {}  # each owner's waiting runs, oldest first
        self._owner: dict[str, Owner] = {}
        self._served: dict[Owner, int] = {}  # owner → the turn at which it was last served
        self._arrived: dict[Owner, int] = {}  # owner → when its oldest waiting run came
        self._clock = itertools.count()
        self.priority: set[Owner] = set()

    def push(self, run_id: str, owner: Owner) -> None:
        if owner not in self._runs or not self._runs[owner]:
            self._runs[owner] = deque()
            self._arrived[owner] = next(self._clock)
        self._runs[owner].append(run_id)
        self._owner[run_id] = owner

    def remove(self, run_id: str) -> bool:
        owner = self._owner.pop(run_id, None)
        runs = self._runs.get(owner)
        if runs is None or run_id not in runs:
            return False
        runs.remove(run_id)
        return True

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._owner

    def waiting(self, owner: Owner) -> int:
        return len(self._runs.get(owner, ()))

    def _rank(self, owner: Owner, served: dict[Owner, int], arrived: dict[Owner, int]) -> tuple:
        return (owner not in self.priority, served.get(owner, -1), arrived[owner])

    def pop(self, may_start: Callable[[Owner], bool] = lambda owner: True) -> tuple[str, Owner] | None:
        """Take the next run to start among the owners `may_start` allows: (run id, owner); None when none."""
        owners = [o for o, runs in self._runs.items() if runs and may_start(o)]
        if not owners:
            return None
        owner = min(owners, key=lambda o: self._rank(o, self._served, self._arrived))
        run_id = self._runs[owner].popleft()
        del self._owner[run_id]
        self._served[owner] = next(self._clock)
        if self._runs[owner]:
            self._arrived[owner] = next(self._clock)
        return run_id, owner

    def order(self) -> list[str]:
        """Every waiting run in the order `pop` would hand them out."""
        runs = {o: list(r) for o, r in self._runs.items() if r}
        served, arrived = dict(self._served), dict(self._arrived)
        clock = itertools.count(10**12)  # simulated turns come after every real one
        out = []
        while runs:
            owner = min(runs, key=lambda o: self._rank(o, served, arrived))
            out.append(runs[owner].pop(0))
            served[owner] = next(clock)
            if runs[owner]:
                arrived[owner] = next(clock)
            else:
                del runs[owner]
        return out

    def position(self, run_id: str) -> int | None:
        """1 for the run that starts next; None when it is not waiting."""
        if run_id not in self._owner:
            return None
        return self.order().index(run_id) + 1
