"""The demo's output: lines printed at once, indented details, and the failure of a step."""

from __future__ import annotations


class StepFailed(Exception):
    """A step did not reach its expected result; the message says what was seen."""


def say(text: str = "") -> None:
    """Print a line at once (the demo is watched live)."""
    print(text, flush=True)


def detail(text: str) -> None:
    """Print an indented detail line of the current step."""
    for line in text.splitlines() or [""]:
        say(f"    {line}")
