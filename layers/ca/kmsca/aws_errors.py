"""The translation of botocore's exceptions into the CA's errors, for the adapters.

Adapters (modules that wrap one AWS API) translate a ``ClientError`` they expect (a failed
condition, a missing ARN) into a precise error themselves; every other ``ClientError`` or
``BotoCoreError`` leaving an adapter becomes :class:`~kmsca.errors.AwsCallFailed` through
:func:`aws_call_failed`, :func:`translating` (a block) or :func:`translated` (every public method of
an adapter class), with the botocore exception as its ``__cause__``. Domain modules catch
``AwsCallFailed`` and never import botocore.

Sources: botocore ``ClientError.response`` (``Error.Code``, ``ResponseMetadata.HTTPStatusCode``),
``ClientError.operation_name``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .errors import AwsCallFailed

#: What botocore raises for a failed call.
BOTOCORE_ERRORS = (ClientError, BotoCoreError)

AdapterClass = TypeVar("AdapterClass", bound=type)


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc``: ``Error.Code`` of a ``ClientError`` (``"ClientError"`` when
    AWS sent none), the translated code of an :class:`AwsCallFailed`, else the class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
    if isinstance(exc, AwsCallFailed):
        return exc.error_code
    return type(exc).__name__


def http_status_code(exc: BaseException) -> int | None:
    """The HTTP status of AWS's answer (``ClientError``, :class:`AwsCallFailed`), None without one."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    if isinstance(exc, AwsCallFailed):
        return exc.http_status_code
    return None


def aws_call_failed(exc: ClientError | BotoCoreError, service: str, operation: str = "") -> AwsCallFailed:
    """The :class:`AwsCallFailed` for a botocore exception (raise it ``from exc``).

    Args:
        exc: what botocore raised.
        service: the boto3 service name (``dynamodb``, ``kms``, ...).
        operation: the operation, when ``exc`` does not name it (a ``ClientError`` does).
    """
    if isinstance(exc, ClientError):
        operation = str(getattr(exc, "operation_name", "") or operation)
    return AwsCallFailed(
        str(exc),
        service=service,
        operation=operation,
        error_code=aws_error_code(exc),
        error_type=type(exc).__name__,
        http_status_code=http_status_code(exc),
        answered=isinstance(exc, ClientError),
    )


@contextmanager
def translating(service: str, operation: str = "") -> Iterator[None]:
    """A block whose botocore exceptions leave as :class:`AwsCallFailed` (``from`` the original)."""
    try:
        yield
    except BOTOCORE_ERRORS as exc:
        raise aws_call_failed(exc, service, operation) from exc


def _wrap(function: Callable[..., Any], service: str) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with translating(service, function.__name__):
                yield from function(*args, **kwargs)

        return generator

    @functools.wraps(function)
    def method(*args: Any, **kwargs: Any) -> Any:
        with translating(service, function.__name__):
            return function(*args, **kwargs)

    return method


def _wrap_methods(cls: type, service: str) -> None:
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(cls, name, _wrap(value, service))


def translated(service: str) -> Callable[[AdapterClass], AdapterClass]:
    """Class decorator of an adapter: each public method (not ``_``-prefixed, not a property) of the
    class and of its subclasses raises :class:`AwsCallFailed` instead of a botocore exception.
    Exceptions the method translates itself (and every :class:`~kmsca.errors.KmscaError`) pass
    unchanged; a method calling another one sees that one's translation."""

    def decorate(cls: AdapterClass) -> AdapterClass:
        _wrap_methods(cls, service)
        base: type = cls

        def init_subclass(subclass: type, **kwargs: Any) -> None:
            super(base, subclass).__init_subclass__(**kwargs)  # type: ignore[arg-type]
            _wrap_methods(subclass, service)

        cls.__init_subclass__ = classmethod(init_subclass)  # type: ignore[assignment]
        return cls

    return decorate
