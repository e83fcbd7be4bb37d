"""Local sandbox: the template's functions and AWS emulation (moto) on 127.0.0.1, no AWS account.

Public API (imported lazily, so ``utils.sandbox.kms_patch`` stays light):

- :class:`Sandbox`, :class:`SandboxError`, :class:`FunctionError`, :class:`InvocationResult`
  (``utils.sandbox.server``);
- :func:`patch_moto_kms` (``utils.sandbox.kms_patch``);
- :class:`Template`, :class:`TemplateError` (``utils.sandbox.template``).

Command line: ``python -m utils.sandbox --help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Sandbox": "server",
    "SandboxError": "server",
    "FunctionError": "server",
    "InvocationResult": "server",
    "patch_moto_kms": "kms_patch",
    "Template": "template",
    "TemplateError": "template",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
