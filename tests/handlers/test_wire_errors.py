"""The wire contract of errors (issue item 8): every failure reaches the caller as a documented
code; infrastructure failures as ``InternalError`` with "retry"; every message carries the Lambda
request id; no stack of the CA's code (or botocore's) in the invoke response."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from kmsca.errors import CaError, InternalError, InvalidRequest, to_wire

from tests.support.aws import CaResources, FakeContext, load_handler
from tests.support.csr import csr_pem, make_csr
from utils.sandbox.worker import stack_trace as _stack  # the runtime's stackTrace, as awslambdaric builds it

REQUEST_ID = FakeContext.aws_request_id


def _failing(code: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "Operation")

    return call


def _assert_wire(exc: BaseException, code: str) -> None:
    assert isinstance(exc, CaError) and exc.code == code
    assert str(exc).endswith(f"(request id {REQUEST_ID})")
    assert exc.__cause__ is None and exc.__suppress_context__
    # The frames the runtime reports are those below its own (here: below this test's frame).
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    # only the boundary's own raise: no handler, no kmsca internals, no botocore
    assert [(Path(f.filename).name, f.name) for f in frames] == [("errors.py", "wrapper")]
    assert frames[0].line is not None and frames[0].line.startswith("raise wire")
    stack = [line for line in _stack(exc) if __file__ not in line]
    assert len(stack) == 1 and "kmsca/errors.py" in stack[0] and "botocore" not in "".join(_stack(exc))


def test_to_wire_makes_a_fresh_exception_without_frames() -> None:
    try:
        raise ClientError({"Error": {"Code": "KMSInternalException", "Message": "x"}}, "Sign")
    except ClientError as exc:
        wire = to_wire(exc, "req-1")
    assert isinstance(wire, InternalError) and "retry" in wire.message and "req-1" in wire.message
    assert wire.__traceback__ is None and wire.__cause__ is None
    refused = to_wire(InvalidRequest("bad serial"), "req-2")
    assert type(refused) is InvalidRequest and refused.message == "bad serial (request id req-2)"
    assert refused.__traceback__ is None


@pytest.fixture
def revoke(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler("revoke", bootstrapped.env, monkeypatch)


@pytest.fixture
def issue(bootstrapped: CaResources, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler("issue", bootstrapped.env, monkeypatch)


def test_a_refusal_carries_its_code_and_the_request_id(revoke: Any, lambda_context: FakeContext) -> None:
    with pytest.raises(CaError) as refused:
        revoke.handler({"serial_number": "not-hex"}, lambda_context)
    _assert_wire(refused.value, "InvalidRequest")


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "InternalServerError", "AccessDeniedException"]
)
def test_a_dynamodb_failure_is_internal_error_retry(
    revoke: Any, lambda_context: FakeContext, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    monkeypatch.setattr(revoke.store._client, "update_item", _failing(code))
    with pytest.raises(CaError) as failed:
        revoke.handler({"serial_number": "0a1b"}, lambda_context)
    _assert_wire(failed.value, "InternalError")
    assert "retry" in str(failed.value) and code not in str(failed.value)


@pytest.mark.parametrize("fault", [OverflowError("date value out of range"), ValueError("boom"), KeyError("x")])
def test_an_unexpected_exception_is_internal_error(
    revoke: Any, lambda_context: FakeContext, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise fault

    monkeypatch.setattr(revoke, "revoke", broken)
    with pytest.raises(CaError) as failed:
        revoke.handler({"serial_number": "0a1b"}, lambda_context)
    _assert_wire(failed.value, "InternalError")


def test_a_kms_failure_while_issuing_is_internal_error_and_nothing_is_stored(
    issue: Any, bootstrapped: CaResources, lambda_context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issue.kms, "sign", _failing("KMSInternalException"))
    with pytest.raises(CaError) as failed:
        issue.handler({"csr": csr_pem(make_csr(ec.generate_private_key(ec.SECP256R1())))}, lambda_context)
    _assert_wire(failed.value, "InternalError")
    assert bootstrapped.certificate_count() == 0
