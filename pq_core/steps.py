"""Running generators of steps: the one way pq turns "what to do" into "done".

A queue call is a generator of store calls; a store operation is a generator of statements.
Each yields a step and is sent back its answer, or has the exception its step raised thrown
back in (so its own try/finally blocks hold), until it returns its result. `run` does this with
a plain function answering each step, `run_async` with a coroutine function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

S = TypeVar("S")
T = TypeVar("T")


def run(steps: Generator[S, Any, T], answer: Callable[[S], Any]) -> T:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, error = answer(step), None
        except BaseException as exc:
            value, error = None, exc


async def run_async(steps: Generator[S, Any, T], answer: Callable[[S], Awaitable[Any]]) -> T:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            value, error = await answer(step), None
        except BaseException as exc:  # cancellation too: the generator's finally blocks run
            value, error = None, exc
