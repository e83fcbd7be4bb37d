"""The demo's command line: ``python -m utils.demo [--out-dir DIR] [--sandbox-timeout SECONDS]``."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from utils.demo.context import Demo
from utils.demo.output import say
from utils.demo.runner import print_summary, run_steps
from utils.demo.sandbox_process import SandboxProcess
from utils.demo.steps import STEPS

DESCRIPTION = "End-to-end demo of the private CA on this machine, without an AWS account (README command 1)."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo. Returns 0 when every step passed, else 1."""
    parser = argparse.ArgumentParser(prog="python -m utils.demo", description=DESCRIPTION)
    parser.add_argument(
        "--out-dir", type=Path, default=Path("demo-out"), help="where certificates and keys go (default ./demo-out)"
    )
    parser.add_argument(
        "--sandbox-timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="how long to wait for the sandbox (default 120)",
    )
    args = parser.parse_args(argv)

    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"KMS-backed private CA demo: files go to {out_dir}")
    with tempfile.TemporaryDirectory(prefix="kmsca-demo-") as tmp:
        work = Path(tmp)
        demo = Demo(out_dir=out_dir, work=work, sandbox=SandboxProcess(work, args.sandbox_timeout))
        try:
            outcomes = run_steps(demo, STEPS)
        finally:
            say(f"\nsandbox: {demo.sandbox.stop()}")
    print_summary(outcomes)
    return 0 if all(o.status == "PASS" for o in outcomes) else 1
