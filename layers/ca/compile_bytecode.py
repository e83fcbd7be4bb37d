"""Compile the modules listed in ``bytecode.txt`` to CPython bytecode next to their sources
(``__pycache__/<name>.cpython-312.pyc``, unchecked-hash), for the layer built in ``target``.

Run by the Makefile with the runtime's interpreter (python3.12) at ``sam build``:

    python3.12 compile_bytecode.py TARGET_DIR bytecode.txt [PACKAGE ...]

Every module of each ``PACKAGE`` (a directory under ``TARGET_DIR``: the layer's own ``kmsca``) is
compiled too, so a new module of the CA core needs no entry in the list.

The layer is read-only in Lambda, so a module without bytecode there is compiled at every cold
start; the list holds the modules the functions import at cold start (tests/deploy/test_packaging.py
checks it), not the whole layer, which would add about 3 MiB zipped for modules never imported.
Unchecked-hash: the .pyc is used without comparing it to its source's modification time, which
zip extraction does not keep; both come from one build, and a layer version is immutable.

Exits non-zero if a listed module has no source file in ``target`` (a stale list).
"""

from __future__ import annotations

import py_compile
import sys
from importlib.util import cache_from_source
from pathlib import Path


def source_of(target: Path, module: str) -> Path | None:
    """The ``.py`` file of ``module`` (dotted name) under ``target``, or None."""
    base = target.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def package_modules(target: Path, package: str) -> list[str]:
    """Dotted names of every ``.py`` module of the package directory ``target/package``."""
    names = []
    for source in sorted((target / package).rglob("*.py")):
        parts = source.relative_to(target).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def main(target: Path, listing: Path, packages: list[str]) -> int:
    modules = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    for package in packages:
        modules.extend(package_modules(target, package))
    missing = []
    for module in modules:
        source = source_of(target, module)
        if source is None:
            missing.append(module)
            continue
        py_compile.compile(str(source), cfile=cache_from_source(str(source)), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if missing:
        print(f"{listing}: no source in {target} for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
