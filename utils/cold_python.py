#!/usr/bin/env python3
"""The interpreter the benchmark's cold section runs handlers with: CPython 3.12 (the template's
``Runtime: python3.12``) in a virtualenv holding exactly the distributions the functions' packages
ship (every layer's ``requirements.txt``, see utils/lambda_packages.py) plus the runtime's boto3
stack, each at the version installed in the development virtualenv (the one the tests run against).

    python utils/cold_python.py [--python /root/.pyenv/versions/3.12.1/bin/python] [--venv .venv-bench312]

Idempotent: re-running reinstalls only what differs. The cold section hides from each function
whatever its own layers do not ship (e.g. ``awscrt`` outside the KeyValueStore functions), so one
virtualenv serves every function.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-bench312"
RUNTIME_VERSION = (3, 12)


def default_base_python() -> str | None:
    """A CPython 3.12 to build the virtualenv from: pyenv's newest 3.12, else ``python3.12`` on PATH
    (pyenv's shims are skipped: they fail unless 3.12 is the selected version)."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.12.*/bin/python"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which("python3.12")
    return found if found and "/shims/" not in found else None


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def pinned_requirements() -> list[str]:
    """``name==version`` of every distribution some function ships, versions from this environment.

    Raises:
        SystemExit: a shipped distribution is not installed here (run ``./dev.sh test`` first).
    """
    from utils.lambda_packages import function_layers, shipped_distributions
    from utils.sandbox.template import load_template

    names: set[str] = set()
    for layers in function_layers(load_template(REPO / "template.yaml")).values():
        names |= shipped_distributions(layers)
    pins = []
    for name in sorted(names):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed in {sys.prefix}: set up the development virtualenv") from None
    return pins


def make(base_python: str, venv: Path) -> Path:
    """Create (or update) ``venv`` from ``base_python`` with :func:`pinned_requirements`; returns
    its interpreter. Raises ``SystemExit`` if ``base_python`` is not CPython 3.12 or pip fails."""
    version = subprocess.run([base_python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.split()
    if tuple(int(part) for part in version) != RUNTIME_VERSION:
        raise SystemExit(f"{base_python} is Python {'.'.join(version)}, the functions run on 3.12")
    if not venv_python(venv).exists():
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    pins = pinned_requirements()
    done = subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--only-binary=:all:", *pins])
    if done.returncode != 0:
        raise SystemExit("pip install failed (see above)")
    return venv_python(venv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=default_base_python(), help="a CPython 3.12 interpreter")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"default {DEFAULT_VENV.relative_to(REPO)}")
    args = parser.parse_args()
    if not args.python:
        parser.error("no python3.12 found: pass --python PATH (e.g. pyenv install 3.12)")
    sys.path[:0] = [str(REPO), str(REPO / "layers" / "ca")]
    print(make(args.python, args.venv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
