"""One error hierarchy: every error class the CA defines is a KmscaError with a code, a message and
details; refusals (CaError) keep their code on the wire, internal failures become InternalError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import kmsca
import pytest
from kmsca.errors import (
    CaError,
    InternalError,
    InternalFailure,
    KmscaError,
    LifetimeExceeded,
    PendingImportGone,
    to_wire,
)
from kmsca.issuance import IssuancePolicy, check_validity

from tests.support.records import NOW

#: None: ``KvsSyncFailed`` and ``AwsCallFailed`` keep the AWS error code in ``error_code``, so
#: ``code`` is the class name everywhere.
OUTSIDE: set[str] = set()


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(kmsca.__path__, "kmsca."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__.startswith("kmsca"):
                found[name] = value
    return found


def test_every_error_class_of_the_ca_is_in_the_hierarchy() -> None:
    classes = _exception_classes()
    assert len(classes) > 20
    outside = {name for name, cls in classes.items() if not issubclass(cls, KmscaError)}
    assert outside == OUTSIDE


def test_a_refusal_carries_the_values_that_explain_it() -> None:
    with pytest.raises(LifetimeExceeded) as refused:
        check_validity(400, IssuancePolicy(365, 90), NOW.replace(year=2030), NOW)
    assert refused.value.code == "LifetimeExceeded"
    assert refused.value.message == "lifetime_days 400 is above the maximum of 365 days"
    assert dict(refused.value.details) == {"lifetime_days": 400, "max_lifetime_days": 365}
    assert refused.value.to_dict() == {
        "code": "LifetimeExceeded",
        "message": "lifetime_days 400 is above the maximum of 365 days",
        "details": {"lifetime_days": 400, "max_lifetime_days": 365},
    }


def test_details_are_read_only() -> None:
    error = CaError("x", serial_number="0a")
    with pytest.raises(TypeError):
        error.details["serial_number"] = "0b"  # type: ignore[index]


def test_on_the_wire_a_refusal_keeps_code_message_and_details() -> None:
    wire = to_wire(LifetimeExceeded("too long", lifetime_days=400), "req-1")
    assert type(wire) is LifetimeExceeded
    assert (str(wire), wire.message) == ("too long (request id req-1)", "too long (request id req-1)")
    assert dict(wire.details) == {"lifetime_days": 400}
    assert wire.__cause__ is None and wire.__suppress_context__


def test_on_the_wire_an_internal_failure_is_an_internal_error() -> None:
    failure = PendingImportGone("certificate 0a is no longer pending its ACM import", serial_number="0a")
    assert isinstance(failure, InternalFailure) and not isinstance(failure, CaError)
    wire = to_wire(failure, "req-2")
    assert type(wire) is InternalError
    assert "0a" not in str(wire) and str(wire).endswith("retry (request id req-2)")


def test_a_failed_aws_call_is_an_internal_failure_named_after_botocore() -> None:
    from botocore.exceptions import ClientError, ReadTimeoutError
    from kmsca.aws_errors import aws_call_failed
    from kmsca.errors import AwsCallFailed, error_name

    refused = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "PutItem",
    )
    failure = aws_call_failed(refused, "dynamodb")
    assert isinstance(failure, AwsCallFailed) and isinstance(failure, InternalFailure)
    assert (failure.code, failure.message, error_name(failure)) == ("AwsCallFailed", str(refused), "ClientError")
    assert dict(failure.details) == {
        "service": "dynamodb", "operation": "PutItem", "error_code": "ThrottlingException",
        "error_type": "ClientError", "http_status_code": 400, "answered": True,
    }
    lost = aws_call_failed(ReadTimeoutError(endpoint_url="https://kms"), "kms", "Sign")
    assert (lost.error_code, lost.operation, lost.http_status_code, lost.answered) == (
        "ReadTimeoutError", "Sign", None, False
    )
    assert type(to_wire(lost, "req-3")) is InternalError


def test_kvs_errors_keep_the_aws_error_code_apart_from_their_code() -> None:
    from kmsca.kvs import KvsCapacityExceeded, KvsConflict, KvsSyncFailed

    failed = KvsSyncFailed("KeyValueStore update_keys failed: ThrottlingException", "ThrottlingException")
    assert (failed.code, failed.error_code) == ("KvsSyncFailed", "ThrottlingException")
    assert (KvsConflict("6 conflicting writes", conflicts=6).error_code, KvsConflict("x").code) == ("", "KvsConflict")
    assert isinstance(KvsCapacityExceeded("too big"), InternalFailure)
