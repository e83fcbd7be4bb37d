"""Waiting for something asynchronous without sleeping a guessed time: poll until it holds, fail
at a deadline. A test never asserts on elapsed time; the deadline only bounds how long it waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two polls: short, so a test continues a moment after the condition holds.
POLL_INTERVAL = 0.05


def wait_until(
    condition: Callable[[], T], timeout: float = 15.0, what: str = "the condition", interval: float = POLL_INTERVAL
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns a truthy value, and return it.

    Raises AssertionError naming ``what`` when ``timeout`` seconds (monotonic clock) pass first; the
    condition is evaluated once more at the deadline, so a slow machine is given the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)


def holds_for(condition: Callable[[], object], seconds: float, what: str = "the condition",
              interval: float = POLL_INTERVAL) -> None:
    """Check that ``condition`` stays truthy for ``seconds`` (polled every ``interval``): for "nothing
    else happens" assertions, which cannot be polled for; raises AssertionError naming ``what`` at the
    first poll where it does not hold."""
    deadline = time.monotonic() + seconds
    while True:
        if not condition():
            raise AssertionError(f"{what} stopped holding")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


def wait_stable(read: Callable[[], T], quiet: float, timeout: float = 30.0, what: str = "the value",
                interval: float = POLL_INTERVAL) -> T:
    """Poll ``read`` until its value has not changed for ``quiet`` seconds, and return that value:
    for letting earlier asynchronous work finish (``quiet`` longer than the longest gap between two
    of its steps, e.g. a poll interval plus a batching window). Raises AssertionError naming ``what``
    when it is still changing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while True:
        time.sleep(interval)
        now = time.monotonic()
        current = read()
        if current != value:
            value, since = current, now
        elif now - since >= quiet:
            return value
        if now >= deadline:
            raise AssertionError(f"{what} still changing after {timeout:g} s")
