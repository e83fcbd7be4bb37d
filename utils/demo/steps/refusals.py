"""Refusals: bad requests get their error code from the CA or the CLI, and nothing is written."""

from __future__ import annotations

from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail


def step_refusals(demo: Demo) -> str:
    """Bad requests are refused with their error code, and nothing is written."""
    cases = [
        ("client-cert.py", ["too-long", "--lifetime-days", "100000"], "LifetimeExceeded"),
        ("server-cert.py", ["wild", "--san", "dns:*.com"], "InvalidSubjectAlternativeName"),
        ("server-cert.py", ["no-san.example"], "InvalidSubjectAlternativeName"),
    ]
    for script, args, code in cases:
        name = args[0]
        result = demo.cli(script, *args, "--out-dir", str(demo.out_dir))
        message = result.stderr.strip()
        detail(f"exit status {result.returncode}: {message}")
        if result.returncode != 2 or not message.startswith(f"error: {code}: "):
            raise StepFailed(f"{script} {' '.join(args)}: expected exit status 2 and {code}")
        if leftovers := sorted(p.name for p in demo.out_dir.glob(f"{name}.*")):
            raise StepFailed(f"files were written for a refused request: {leftovers}")
    return f"{len(cases)} bad requests refused with their codes; nothing written"
