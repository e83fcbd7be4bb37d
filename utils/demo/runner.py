"""Running the demo's steps in order: a step whose requirements did not pass is skipped; a summary
table closes the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail, say


@dataclass(frozen=True)
class Step:
    """One demo step: ``run`` returns a one-line result or raises :class:`StepFailed`.

    ``requires`` names steps that must have passed; otherwise this one is skipped.
    """

    name: str
    title: str
    run: Callable[[Demo], str]
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """Result of one step: ``status`` is PASS, FAIL or SKIP; ``seconds`` its duration."""

    step: Step
    status: str
    summary: str
    seconds: float


def run_steps(demo: Demo, steps: Sequence[Step]) -> list[Outcome]:
    """Run ``steps`` in order, printing each; a step whose requirements did not pass is skipped."""
    outcomes: list[Outcome] = []
    passed: set[str] = set()
    for number, step in enumerate(steps, 1):
        say(f"\n[{number}/{len(steps)}] {step.title}")
        missing = [r for r in step.requires if r not in passed]
        if missing:
            outcomes.append(Outcome(step, "SKIP", f"needs {', '.join(missing)}", 0.0))
            say(f"  SKIP: needs {', '.join(missing)}")
            continue
        started = time.monotonic()
        try:
            summary = step.run(demo)
            status = "PASS"
            passed.add(step.name)
        except StepFailed as exc:
            status, summary = "FAIL", str(exc)
        except Exception as exc:  # a bug or an environment problem: report it as this step's failure
            status, summary = "FAIL", f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        outcomes.append(Outcome(step, status, summary, seconds))
        first, _, rest = summary.partition("\n")
        say(f"  {status}: {first}")
        if rest:
            detail(rest)
    return outcomes


def print_summary(outcomes: Sequence[Outcome]) -> None:
    """The table of steps with PASS/FAIL/SKIP."""
    width = max(len(o.step.title) for o in outcomes)
    say("\nSummary")
    say(f"  {'step':<{width}}  result  seconds")
    for o in outcomes:
        say(f"  {o.step.title:<{width}}  {o.status:<6}  {o.seconds:7.1f}")
    failed = [o for o in outcomes if o.status != "PASS"]
    say(f"\n{'FAILED' if failed else 'PASSED'}: {len(outcomes) - len(failed)}/{len(outcomes)} steps passed")
