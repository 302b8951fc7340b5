"""Time for people: `format_duration` (every time estimate uses it) and `BuildClock`, the wall-time
lines of a target's build (its early estimate and each logged epoch's ETA)."""

from __future__ import annotations

import time
from typing import Callable, Sequence

Log = Callable[[str], None]


def format_duration(seconds: float) -> str:
    """A duration for people: 40ms, 4.2s, 42s, 7m 05s, 2h 31m (rounded to the unit shown last)."""
    if seconds < 0.9995:
        return f"{round(max(seconds, 0.0) * 1000)}ms"
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    if round(seconds) < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h {minutes:02d}m"


class BuildClock:
    """The wall-time lines of a build, from its real batches only (no extra steps, no RNG use).

    After the first EARLY_BATCHES batches and EARLY_SECONDS of epoch 1 (or at the end of epoch 1
    if that comes first): the time per batch, the epoch it implies and the whole build (an upper
    bound at the cap when training stops once memorised). The rate is per padded token, the unit
    the cost of a batch grows with, measured after the first batch (which pays one-off set-up
    costs); epoch 1's batches are known in advance, so the epoch's token count is exact. Each
    logged epoch line then gets the mean seconds per epoch since the last logged line and the ETA.
    """

    EARLY_BATCHES, EARLY_SECONDS = 5, 2.0

    def __init__(self, epochs: int, until_memorised: bool, log: Log, tag: str) -> None:
        self.epochs, self.until, self.log, self.tag = epochs, until_memorised, log, tag
        self.start = self.since_logged = time.perf_counter()
        self.epochs_since_logged = 0
        self.early_done = False

    def first_epoch(self, batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> None:
        """Epoch 1's batches (example indices), before it starts."""
        self.tokens = [len(b) * max(lengths[i] for i in b) for b in batches]
        self.marks: list[float] = []  # wall time after each batch

    def batch_done(self) -> None:
        """Call after each batch of epoch 1: logs the early estimate once."""
        if self.early_done:
            return
        self.marks.append(time.perf_counter())
        n, elapsed = len(self.marks), self.marks[-1] - self.start
        if (n >= self.EARLY_BATCHES and elapsed >= self.EARLY_SECONDS) or n == len(self.tokens):
            self.early_done = True
            self.log(self._early_line())

    def _early_line(self) -> str:
        n = len(self.marks)
        if n >= 2:  # from the end of batch 1: its one-off costs would inflate every epoch
            seconds, tokens = self.marks[-1] - self.marks[0], sum(self.tokens[1:n])
        else:
            seconds, tokens = self.marks[0] - self.start, self.tokens[0]
        epoch = seconds / max(tokens, 1) * sum(self.tokens)
        whole = epoch * self.epochs
        total = (f"whole build ≤ {format_duration(whole)} of training at the cap of {self.epochs} epochs "
                 f"(+ accuracy checks); it stops as soon as the answers are memorised" if self.until
                 else f"whole build ≈ {format_duration(whole)} ({self.epochs} epochs)")
        return (f"[{self.tag}] first {n} of {len(self.tokens)} batches: "
                f"{format_duration((self.marks[-1] - self.start) / n)}/batch → ~{format_duration(epoch)} "
                f"per epoch of training (estimate); {total}")

    def epoch_done(self) -> None:
        self.epochs_since_logged += 1

    def epoch_note(self, epoch: int, finished: bool) -> str:
        """What a logged epoch line gets: seconds per epoch (mean since the last logged line) and
        the ETA, or the time trained when this is the last epoch."""
        now = time.perf_counter()
        per_epoch = (now - self.since_logged) / max(self.epochs_since_logged, 1)
        self.since_logged, self.epochs_since_logged = now, 0
        if finished:
            return f"  {format_duration(per_epoch)}/epoch, trained in {format_duration(now - self.start)}"
        eta = format_duration(per_epoch * (self.epochs - epoch))
        return (f"  {format_duration(per_epoch)}/epoch, ETA ≤ {eta} (the cap of {self.epochs} epochs)"
                if self.until else f"  {format_duration(per_epoch)}/epoch, ETA {eta}")
