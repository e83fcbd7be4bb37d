"""What each function ships: its layers (from template.yaml), each layer's ``requirements.txt``
resolved to the distributions installed in this environment, plus what the Lambda Python runtime
provides itself (boto3 and its dependencies).

Used by the benchmark's ``--cold`` section (a fresh process may import only what the function
ships, so a package installed in the development virtualenv but absent from the function's
layers, such as ``awscrt`` outside the KeyValueStore sync function, stays unimportable there, as
in Lambda) and by ``tests/test_packaging.py``.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]

# The python3.12 runtime's own SDK (/var/runtime): importable by every function without a layer.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"})


def function_layers(template: Mapping[str, Any], repo: Path = REPO) -> dict[str, list[Layer]]:
    """Logical id of every ``AWS::Serverless::Function`` -> its layers (Globals first, as SAM
    merges them)."""
    resources = template["Resources"]
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    result = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = []
        for ref in [*global_layers, *resource["Properties"].get("Layers", [])]:
            layer = resources[ref["Ref"]]
            build = (layer.get("Metadata") or {}).get("BuildMethod", "")
            layers.append(Layer(ref["Ref"], repo / layer["Properties"]["ContentUri"], build))
        result[logical_id] = layers
    return result


@dataclass(frozen=True)
class Layer:
    """A layer of the template: ``path`` its ``ContentUri``; ``build_method`` from its Metadata
    (``makefile`` here means ``pip install --no-deps``: the layer ships exactly what it lists)."""

    logical_id: str
    path: Path
    build_method: str

    @property
    def requirements(self) -> list[Requirement]:
        return layer_requirements(self.path)

    @property
    def distributions(self) -> set[str]:
        """Canonical names of the distributions the built layer contains."""
        if self.build_method == "makefile":
            return {canonicalize_name(req.name) for req in self.requirements}
        return closure(self.requirements)


def layer_requirements(layer_dir: Path) -> list[Requirement]:
    """The requirements a layer is built from (``requirements.txt``; comments and blanks skipped)."""
    path = layer_dir / "requirements.txt"
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in, recursively,
    extras and environment markers honoured."""
    found: set[str] = set()
    pending = [(req, frozenset(req.extras)) for req in requirements]
    while pending:
        req, extras = pending.pop()
        name = canonicalize_name(req.name)
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in found:
            continue
        found.add(key)
        found.add(name)
        for text in metadata.requires(req.name) or []:
            child = Requirement(text)
            wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                pending.append((child, frozenset(child.extras)))
    return {name for name in found if "[" not in name}


def shipped_distributions(layers: Iterable[Layer]) -> set[str]:
    """Distributions a function can import: its layers' plus the runtime's SDK."""
    return set(RUNTIME_PROVIDED).union(*(layer.distributions for layer in layers))


def needed_distributions(layers: Iterable[Layer]) -> set[str]:
    """Distributions a function's layers' requirements need, dependencies included."""
    return closure(req for layer in layers for req in layer.requirements)


def hidden_modules(shipped: set[str]) -> set[str]:
    """Top-level modules installed here that belong to no shipped distribution."""
    hidden = set()
    for module, dists in metadata.packages_distributions().items():
        if not {canonicalize_name(dist) for dist in dists} & shipped:
            hidden.add(module)
    return hidden


def layer_sources(layers: Iterable[Layer]) -> set[str]:
    """Top-level packages and modules in the layers' source directories (``kmsca`` of the CA
    layer), which the built layer ships as they are."""
    found = set()
    for layer in layers:
        for entry in layer.path.iterdir() if layer.path.is_dir() else ():
            if (entry / "__init__.py").is_file():
                found.add(entry.name)
            elif entry.suffix == ".py" and entry.is_file():
                found.add(entry.stem)
    return found


_CHILD = """
import importlib.abc, sys, time
HIDDEN = frozenset({hidden!r})
class _NotShipped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in this function's package)", name=name)
        return None
sys.meta_path.insert(0, _NotShipped())
sys.path[:0] = {paths!r}
started = time.perf_counter()
import {module}
elapsed = (time.perf_counter() - started) * 1000
{after}
print(elapsed)
"""


def import_script(code_dir: Path, layers: Iterable[Layer], module: str, after: str = "") -> str:
    """Python source that imports the handler ``module`` as Lambda would: the code directory, then
    the layers' sources on ``sys.path``, and every installed distribution the function does not
    ship made unimportable. Prints the import's milliseconds (last line); runs ``after`` first."""
    layers = list(layers)
    # A layer's own sources (layers/ca/kmsca) are on the path; the installed copy of this repository
    # (pyproject.toml: kmsca, certcli) must not hide them, nor make them importable without the layer.
    hidden = hidden_modules(shipped_distributions(layers)) - layer_sources(layers)
    paths = [str(code_dir), *(str(layer.path) for layer in layers)]
    return _CHILD.format(hidden=sorted(hidden), paths=paths, module=module, after=after)
