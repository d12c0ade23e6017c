"""The budget of one render: steps and CPU time, so no template can run for long.

A **step** is one iteration of a ``{% for %}`` loop (every loop's iterable is wrapped in
:func:`counted` when the template is compiled, see :func:`count_loops`) or one call the
template makes (a macro, ``range()``, a method: the sandbox's ``call`` hook counts it).
A render may take ``max_steps`` steps and ``max_cpu_seconds`` of its thread's CPU time
(checked every :data:`CHECK_EVERY` steps); past either it fails with
:class:`BudgetExceeded`, which names the budget. The output is bounded separately
(``MAX_RENDERED_CHARS``, by the renderer).

The budget in force is held in a context variable set by :func:`budget` around one
render, in the thread that renders; a render outside it (none set) is not counted.
Pure: no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError

STEP_FILTER = "_notify_step"
"""The filter every loop's iterable goes through."""
CHECK_EVERY = 32
"""Steps between two looks at the CPU clock (it costs about a microsecond)."""


class BudgetExceeded(SecurityError):
    """A render went past its step or CPU-time budget."""


class RenderBudget:
    """Steps taken and CPU time used by one render."""

    __slots__ = ("_max_cpu", "_max_steps", "_next_check", "_started", "steps")

    def __init__(self, max_steps: int, max_cpu_seconds: float) -> None:
        self.steps = 0
        self._max_steps = max_steps
        self._max_cpu = max_cpu_seconds
        self._started = time.thread_time()
        self._next_check = min(CHECK_EVERY, max_steps + 1)

    def step(self) -> None:
        self.steps += 1
        if self.steps >= self._next_check:
            self._check()

    def _check(self) -> None:
        if self.steps > self._max_steps:
            raise BudgetExceeded(
                f"the template takes more than {self._max_steps} steps (loop iterations and "
                "calls), the budget of one render"
            )
        if time.thread_time() - self._started > self._max_cpu:
            raise BudgetExceeded(
                f"the template takes more than {self._max_cpu:g} s of CPU time, the budget "
                "of one render"
            )
        self._next_check = min(self.steps + CHECK_EVERY, self._max_steps + 1)


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("notify_render_budget", default=None)


@contextmanager
def budget(max_steps: int, max_cpu_seconds: float) -> Iterator[RenderBudget]:
    """Count the renders inside the block against one fresh budget."""
    current = RenderBudget(max_steps, max_cpu_seconds)
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def step() -> None:
    """Count one step against the budget in force, if any."""
    current = _CURRENT.get()
    if current is not None:
        current.step()


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """``iterable``, one step per item (the filter :data:`STEP_FILTER`)."""
    current = _CURRENT.get()
    if current is None:
        yield from iterable
        return
    for item in iterable:
        current.step()
        yield item


def count_loops(tree: nodes.Template) -> nodes.Template:
    """Make every ``for`` loop of a parsed template count its iterations (in place)."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, STEP_FILTER, [], [], None, None, lineno=loop.lineno)
    return tree
