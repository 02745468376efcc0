"""The baton: which simulated worker runs next, by virtual clock.

N threads run real worker bodies; exactly one of them (the baton's holder) runs at any moment.
A worker hands the baton on only at an *event* (:meth:`Baton.step`, called before each epoch
report) or when it has nothing to do (:meth:`Baton.idle`). The baton then goes to the worker
whose virtual clock is earliest, ties broken by (busy before idle, then a seeded random order
drawn afresh at each worker's every event, or the lower worker index without a seed), so the
order of events depends on the clocks and the seed alone, never on the machine's load or the OS
scheduler. On the epochs clock every worker's events fall on whole numbers, so ties are the
rule: with the index, worker 0 reports every epoch first and its first trial reaches every rung
first (issue 27: configuration 0 trained to the end in 200 of 200 eight-worker cells); real
workers' jitter favours nobody, nor does a seeded order.

Clocks: ``"epochs"`` advances a worker by 1 per reported epoch (bit-reproducible on one
machine);
``"compute"`` by the CPU seconds its thread used since its previous event
(``time.thread_time``: the epoch and, for a trial's first epoch, its probe), which follows the
real cost of the work but depends on the machine, so it is not reproducible bit for bit.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Literal

VirtualClock = Literal["epochs", "compute"]
VIRTUAL_CLOCKS: tuple[VirtualClock, ...] = ("epochs", "compute")


class Baton:
    """Hands the one running slot among ``n_workers`` simulated workers by virtual clock.

    Args:
        n_workers: How many simulated workers take turns.
        clock: ``"epochs"`` or ``"compute"`` (see the module docstring).
        tie_seed: Seeds the random order that breaks ties between workers at one virtual time
            (the same seed gives the same order of events); ``None`` breaks them by the lower
            worker index.
    """

    def __init__(
        self, n_workers: int, *, clock: VirtualClock = "epochs", tie_seed: int | None = None
    ) -> None:
        if n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        if clock not in VIRTUAL_CLOCKS:
            raise ValueError(f"clock must be one of {VIRTUAL_CLOCKS}, got {clock!r}")
        self.clock = clock
        self._cond = threading.Condition()
        self._time = [0.0] * n_workers
        self._idle = [False] * n_workers
        self._cpu = [0.0] * n_workers
        self._live = set(range(n_workers))
        self._ties = None if tie_seed is None else random.Random(int(tie_seed))
        self._rank = [float(w) if self._ties is None else self._ties.random() for w in self._live]
        # Every clock is 0 at the start: the first turn is a tie too.
        self._turn: int | None = min(self._live, key=lambda w: (self._rank[w], w))
        self.events = 0
        """Events handed out so far (a global order of every report, for the evidence)."""

    def now(self, worker: int) -> float:
        """Worker ``worker``'s virtual clock."""
        return self._time[worker]

    def start(self, worker: int) -> None:
        """Called by worker ``worker``'s thread before it does anything: wait for the baton."""
        with self._cond:
            self._cpu[worker] = time.thread_time()
            self._wait(worker)

    def step(self, worker: int) -> int:
        """An event of ``worker`` (it finished an epoch): advance its clock, hand the baton to
        the earliest worker and return once it is this worker's turn again; returns the
        event's global sequence number."""
        with self._cond:
            cpu = time.thread_time()
            self._time[worker] += 1.0 if self.clock == "epochs" else cpu - self._cpu[worker]
            self._idle[worker] = False
            self._redraw(worker)
            self._hand_on()
            self._wait(worker)
            self._cpu[worker] = time.thread_time()
            self.events += 1
            return self.events

    def idle(self, worker: int) -> None:
        """``worker`` has nothing to do until another worker's next event: move its clock to
        the earliest busy worker's and let every busy worker at that time go first."""
        with self._cond:
            busy = [self._time[w] for w in self._live if w != worker and not self._idle[w]]
            if not busy:  # nobody can change anything: the caller's own loop ends this
                return
            self._time[worker] = max(self._time[worker], min(busy))
            self._idle[worker] = True
            self._redraw(worker)
            self._hand_on()
            self._wait(worker)
            self._cpu[worker] = time.thread_time()

    def finish(self, worker: int) -> None:
        """``worker``'s body returned (or raised): it takes no more turns."""
        with self._cond:
            self._live.discard(worker)
            if self._turn == worker:
                self._hand_on()

    def _redraw(self, worker: int) -> None:
        if self._ties is not None:
            self._rank[worker] = self._ties.random()

    def _hand_on(self) -> None:
        order = sorted(self._live, key=lambda w: (self._time[w], self._idle[w], self._rank[w], w))
        self._turn = order[0] if order else None
        self._cond.notify_all()

    def _wait(self, worker: int) -> None:
        while self._turn != worker:
            self._cond.wait()
