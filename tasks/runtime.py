"""Run-time helpers shared by every task: the right logger, the engine/no-engine switch, and
how a step reports its figures and its time.

Each flow's steps are written once (``flows/*.py``) and run two ways: through Prefect's
engine when a deployment or a configured Prefect server runs them, or as plain functions
(``task.fn``) when a CLI command runs them without a server (so ``nudge sync`` never waits
13-25 s for Prefect's temporary server).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ParamSpec, TypeVar

from prefect import Task
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger
from prefect.utilities.annotations import quote

P = ParamSpec("P")
R = TypeVar("R")

_PLAIN = (str, int, float, bool, type(None))


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (artifacts and events can be created)."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def run_logger(name: str = "nudge") -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a run (shown in the UI), else a standard logger."""
    if in_prefect_run():
        return get_run_logger()
    return logging.getLogger(name)


def stepper(engine: bool) -> Callable[[Task[P, R]], Callable[..., R]]:
    """How a flow calls its tasks: through the engine, or as plain functions.

    With the engine, every non-scalar argument is wrapped in ``quote`` so Prefect does not
    walk a 350,000-row extract looking for futures.
    """

    def through_engine(task: Task[P, R]) -> Callable[..., R]:
        def call(*args: Any, **kwargs: Any) -> R:
            args = tuple(a if isinstance(a, _PLAIN) else quote(a) for a in args)
            kwargs = {k: v if isinstance(v, _PLAIN) else quote(v) for k, v in kwargs.items()}
            result: R = task(*args, **kwargs)
            return result

        return call

    def plain(task: Task[P, R]) -> Callable[..., R]:
        fn: Callable[..., R] = task.fn
        return fn

    return through_engine if engine else plain


class Stopwatch:
    """Seconds since creation (``lap``), for the split of time a run reports per step."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def lap(self) -> float:
        """Seconds since this stopwatch was created, rounded to 0.1 ms."""
        return round(time.perf_counter() - self._start, 4)


def as_dict(report: Any) -> dict[str, Any]:
    """A step's report dataclass as a plain dict, without its timing (``seconds``)."""
    return {k: v for k, v in asdict(report).items() if k != "seconds"}
