"""The repository as a package (pyproject.toml): a copy of exactly the files its build reads, so
a test can build or install it without leaving ``build/`` in the work tree."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: What the build backend reads: the metadata, and the two packages' source trees.
PACKAGE_FILES = ("pyproject.toml", "README.md", "layers/ca/kmsca", "utils/certcli")


def package_source(destination: Path) -> Path:
    """Copy :data:`PACKAGE_FILES` (without ``__pycache__``) under ``destination``; returns it."""
    for part in PACKAGE_FILES:
        source, target = REPO / part, destination / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return destination
