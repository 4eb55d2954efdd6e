"""Run-time helpers shared by every task: the right logger and the engine/no-engine switch.

Each flow's steps are written once (``flows/*.py``) and run two ways: through Prefect's
engine when a deployment or a configured Prefect server runs them, or as plain functions
(``task.fn``) when a CLI command runs them without a server (so ``nudge sync`` never waits
13-25 s for Prefect's temporary server).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from prefect import Task
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger
from prefect.utilities.annotations import quote

P = ParamSpec("P")
R = TypeVar("R")

_PLAIN = (str, int, float, bool, type(None))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a step that builds many acyclic objects.

    A sync holds ~a million small containers; every allocation threshold would trigger a
    collection that walks all of them, which costs more than the work itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
