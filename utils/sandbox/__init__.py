"""Local sandbox: the template's functions and AWS emulation (moto) on 127.0.0.1, no AWS account.

Public API (imported lazily, so ``utils.sandbox.kms_patch`` stays light):

- :class:`Sandbox`, :class:`SandboxError`, :class:`FunctionError`, :class:`InvocationResult`
  (``utils.sandbox.server``);
- :class:`ConnectionFunction` (``utils.sandbox.server``);
- :class:`ChildStack` (``utils.sandbox.stacks``): nested stacks and stacks deployed into
  workload accounts (``Sandbox.deploy_stack``; ``utils.sandbox.accounts``);
- :func:`patch_moto_kms` (``utils.sandbox.kms_patch``), :func:`patch_moto_acm`
  (``utils.sandbox.acm_patch``);
- :class:`KvsEmulator`, :func:`install_kvs_emulator`, :func:`uninstall_kvs_emulator`,
  :func:`redirect_kvs_clients` (``utils.sandbox.kvs``);
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
    "ConnectionFunction": "server",
    "ChildStack": "stacks",
    "patch_moto_kms": "kms_patch",
    "patch_moto_acm": "acm_patch",
    "KvsEmulator": "kvs",
    "install_kvs_emulator": "kvs",
    "uninstall_kvs_emulator": "kvs",
    "redirect_kvs_clients": "kvs",
    "Template": "template",
    "TemplateError": "template",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
