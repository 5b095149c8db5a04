"""The learning-rate schedule and the clock that fits it to a time limit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .config import TrainConfig

# A time-limited run measures its rate between these steps (the ones before start the
# loaders and the device) and fits the cycle to it; then it measures and fits again every
# REFIT_EVERY steps, as a machine's pace drifts. It keeps this share of the time left as a margin.
RATE_WINDOW = (20, 120)
REFIT_EVERY = 250
TIME_MARGIN = 0.97


def learning_rate_at(step: int, config: TrainConfig) -> float:
    step_in_cycle = max(step - config.cycle_start, 0)
    if step_in_cycle < config.warmup_steps:
        return config.learning_rate * (step_in_cycle + 1) / config.warmup_steps
    cycle_length = config.steps - config.cycle_start - config.warmup_steps
    progress = (step_in_cycle - config.warmup_steps) / max(cycle_length, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


class RunClock:
    """A run's clock. With a time limit it fits the cycle's end to it, from the pace of recent steps."""

    def __init__(
        self, minutes: float | None, first_step: int, last_step: int, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.limit = 60 * minutes if minutes else None
        self.first_step = first_step
        self.last_step = last_step  # the configured `steps`: no fit goes past it
        self.now = now
        self.started = now()
        self.mark = (first_step, 0.0)  # the step and time the current rate is measured from
        self.rate = 0.0

    def elapsed(self) -> float:
        return self.now() - self.started

    def time_is_up(self) -> bool:
        return self.limit is not None and self.elapsed() > self.limit

    def fitted_steps(self, step: int) -> int | None:
        """The step the cycle must end at to stop in time, at the end of the measuring window and
        every REFIT_EVERY steps after it, each time at the rate since the last; else None."""
        if self.limit is None:
            return None
        since = step - self.first_step
        if since == RATE_WINDOW[0]:
            self.mark = (step, self.elapsed())
        if since < RATE_WINDOW[1] or (since - RATE_WINDOW[1]) % REFIT_EVERY:
            return None
        marked_step, marked_time = self.mark
        self.mark = (step, self.elapsed())
        self.rate = (step - marked_step) / (self.mark[1] - marked_time)
        return steps_within_time(self.last_step, step, self.rate, self.limit - self.mark[1])


def steps_within_time(last_step: int, step: int, rate: float, seconds_left: float) -> int:
    """The step a time-limited run's cycle must end at, so that it stops at its lowest learning rate."""
    return min(last_step, step + int(TIME_MARGIN * rate * seconds_left))
