"""What the sandbox's parts need of the running sandbox, as a Protocol (no import of server.py).

Resource creators (:mod:`.resources`, :mod:`.identities`), custom resources
(:mod:`.custom_resources`), event sources (:mod:`.events`) and the HTTP front (:mod:`.front`)
take a :class:`StackContext`; :class:`utils.sandbox.server.Sandbox` is the one implementation.
Keeping this contract here is what keeps the package free of import cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .kvs import KvsEmulator
from .runtime import InvocationResult, LocalFunction
from .template import Physical, Template

__all__ = ["SandboxError", "StackContext"]


class SandboxError(Exception):
    """The sandbox cannot start or a resource cannot be created (message says which and why)."""


class StackContext(Protocol):
    """The running sandbox as its parts see it.

    ``region``/``account_id``/``stack_name``/``stack_id``: the stack's identity;
    ``template``: the parsed template; ``physical``: logical id -> what was created;
    ``functions``: logical id -> :class:`LocalFunction`; ``kvs``: the KeyValueStore emulator;
    ``endpoint_url``: ``http://127.0.0.1:port``.
    """

    region: str
    account_id: str
    stack_name: str
    stack_id: str
    template: Template
    physical: dict[str, Physical]
    functions: dict[str, LocalFunction]
    kvs: KvsEmulator
    run_schedules: bool
    connection_functions: dict[str, Any]
    #: Function logical id -> the IAM role resource SAM generates for it (see identities.sam_roles).
    sam_roles: dict[str, dict[str, Any]]

    @property
    def endpoint_url(self) -> str: ...

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client with the sandbox administrator's credentials."""

    def function_client(self, logical_id: str, service: str) -> Any:
        """A boto3 client with a function's execution-role credentials."""

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions against what exists so far (SandboxError if impossible)."""

    def register_function(self, function: LocalFunction) -> None:
        """Make a function invocable by name and ARN."""

    def lookup_function(self, name_or_arn: str) -> tuple[LocalFunction | None, str | None]:
        """(function, qualifier) for a name or ARN; (None, None) when not ours."""

    def run_function(
        self, logical_id: str, event: Any, *, wait: float | None = None, request_id: str | None = None
    ) -> InvocationResult:
        """Invoke a function and wait for its result."""

    def runtime_env(self) -> Mapping[str, str]:
        """Variables every function gets besides its own (endpoint, region)."""
