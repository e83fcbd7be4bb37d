"""Unit tests of ``revoke-cert.py`` (utils/certcli/ ``revoke_main``), without the sandbox.

The revoke function is replaced by botocore's Stubber on a real Lambda client, so the request
payload is checked byte for byte and the ``FunctionError`` path is parsed as botocore does.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certcli
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.cli_stubs import cfn_stub, stub_client

REPO = Path(__file__).resolve().parents[2]

REGION = "eu-west-1"
FUNCTION = "kmsca-dev-RevokeFunction-abc123"
SERIAL = "0a3f05c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f607"  # canonical form: lowercase, even length
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(serial: int, *, ca: bool = False, cn: str = "device-42") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name("Test Issuing CA"))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def answer(serial: str = SERIAL, *, reason: str = "keyCompromise", already: bool = False, **extra: Any) -> dict:
    return {
        "serial_number": serial,
        "revoked_at": "2026-11-21T08:00:00Z",
        "reason": reason,
        "already_revoked": already,
        **extra,
    }


def _payload(body: Any) -> StreamingBody:
    data = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(data), len(data))


class FakeRevokeFunction:
    """A Lambda client whose Invoke calls are stubbed; ``expect`` queues one call."""

    def __init__(self) -> None:
        self.client = stub_client("lambda")
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def expect(
        self, request: dict[str, Any], response: dict[str, Any], *, error: bool = False, function: str = FUNCTION
    ) -> None:
        result: dict[str, Any] = {"StatusCode": 200, "Payload": _payload(response)}
        if error:
            result["FunctionError"] = "Unhandled"
        self.stubber.add_response(
            "invoke",
            result,
            {"FunctionName": function, "InvocationType": "RequestResponse", "Payload": json.dumps(request).encode()},
        )


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def fn() -> FakeRevokeFunction:
    return FakeRevokeFunction()


@pytest.fixture
def run(fn: FakeRevokeFunction, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run ``revoke-cert.py`` in ``tmp_path``; keyword arguments replace the clients."""
    monkeypatch.chdir(tmp_path)

    def _run(*argv: str, environ: dict[str, str] | None = None, **clients: Any) -> Run:
        clients.setdefault("lambda_client", fn.client)
        out, err = io.StringIO(), io.StringIO()
        code = certcli.revoke_main(
            list(argv), clients=certcli.AwsClients(**clients), environ=environ or {}, stdout=out, stderr=err
        )
        return Run(code, out.getvalue(), err.getvalue())

    return _run


# --------------------------------------------------------------------------------------------
# What is sent


def test_serial_from_a_pem_certificate_file(run: Callable[..., Run], fn: FakeRevokeFunction, tmp_path: Path) -> None:
    cert = make_cert(int(SERIAL, 16))
    (tmp_path / "device.crt").write_bytes(cert.public_bytes(PEM))
    fn.expect({"serial_number": SERIAL, "reason": "keyCompromise"}, answer())

    result = run("--cert", "device.crt", "--reason", "keyCompromise", "--function-name", FUNCTION)

    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"Revoked certificate {SERIAL} (CN=device-42)"
    assert "reason           keyCompromise" in result.out
    assert "revoked at       2026-11-21T08:00:00Z" in result.out
    assert "already revoked" not in result.out
    assert result.err == ""
    fn.stubber.assert_no_pending_responses()


def test_serial_from_a_full_chain_or_der_file(run: Callable[..., Run], fn: FakeRevokeFunction, tmp_path: Path) -> None:
    leaf, issuer = make_cert(0x0ABC), make_cert(0x77, ca=True, cn="Test Issuing CA")
    (tmp_path / "full.pem").write_bytes(leaf.public_bytes(PEM) + issuer.public_bytes(PEM))
    (tmp_path / "leaf.der").write_bytes(leaf.public_bytes(serialization.Encoding.DER))
    for name in ("full.pem", "leaf.der"):
        fn.expect({"serial_number": "0abc", "reason": "unspecified"}, answer("0abc", reason="unspecified"))
        result = run("--cert", name, "--function-name", FUNCTION)
        assert result.code == 0, result.err
    fn.stubber.assert_no_pending_responses()


@pytest.mark.parametrize("given", ["0A:3F:05:C1:D2:E3:F4:A5:B6:C7:D8:E9:F0:A1:B2:C3:D4:E5:F6:07", SERIAL.upper()])
def test_typed_serial_is_passed_through_as_given(run: Callable[..., Run], fn: FakeRevokeFunction, given: str) -> None:
    """The function normalises (one place for the rules); the CLI checks the answer names the same serial."""
    fn.expect({"serial_number": given, "reason": "superseded"}, answer(reason="superseded"))
    result = run("--serial", f"  {given} ", "--reason", "superseded", "--function-name", FUNCTION)
    assert result.code == 0, result.err
    assert SERIAL in result.out
    fn.stubber.assert_no_pending_responses()


def test_invalidity_date_is_sent(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect(
        {"serial_number": SERIAL, "reason": "keyCompromise", "invalidity_date": "2026-11-20T10:00:00+01:00"},
        answer(invalidity_date="2026-11-20T09:00:00Z"),
    )
    result = run(
        "--serial", SERIAL, "--reason", "keyCompromise", "--invalidity-date", "2026-11-20T10:00:00+01:00",
        "--function-name", FUNCTION,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "invalidity date  2026-11-20T09:00:00Z" in result.out


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("key-compromise", "keyCompromise"),
        ("KEY_COMPROMISE", "keyCompromise"),
        ("cessation of operation", "cessationOfOperation"),
        ("certificatehold", "certificateHold"),
    ],
)
def test_reason_spellings(run: Callable[..., Run], fn: FakeRevokeFunction, typed: str, reason: str) -> None:
    fn.expect({"serial_number": SERIAL, "reason": reason}, answer(reason=reason))
    assert run("--serial", SERIAL, "--reason", typed, "--function-name", FUNCTION).code == 0
    fn.stubber.assert_no_pending_responses()


def test_every_reason_is_accepted_by_name() -> None:
    for reason in certcli.REVOCATION_REASONS:
        assert certcli.parse_reason(reason) == reason
    assert set(certcli.REVOCATION_REASONS) == {
        f.value for f in x509.ReasonFlags if f.value not in ("cACompromise", "aACompromise", "removeFromCRL")
    }


# --------------------------------------------------------------------------------------------
# Results


def test_json_output(run: Callable[..., Run], fn: FakeRevokeFunction, tmp_path: Path) -> None:
    (tmp_path / "d.crt").write_bytes(make_cert(int(SERIAL, 16)).public_bytes(PEM))
    fn.expect({"serial_number": SERIAL, "reason": "keyCompromise"}, answer())
    result = run("--cert", "d.crt", "--reason", "keyCompromise", "--json", "--function-name", FUNCTION)
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "serial_number": SERIAL,
        "revoked_at": "2026-11-21T08:00:00Z",
        "reason": "keyCompromise",
        "already_revoked": False,
        "requested_reason": "keyCompromise",
        "function_name": FUNCTION,
        "stack_name": None,
        "subject": "CN=device-42",
        "certificate_file": "d.crt",
    }


def test_already_revoked_is_success_and_says_so(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "superseded"}, answer(reason="keyCompromise", already=True))
    result = run("--serial", SERIAL, "--reason", "superseded", "--function-name", FUNCTION)
    assert result.code == 0
    assert result.out.splitlines()[0] == (f"Certificate {SERIAL} was already revoked; that revocation stands unchanged")
    assert "reason           keyCompromise" in result.out
    assert result.err.strip() == "warning: already revoked as keyCompromise; --reason superseded was not applied"


def test_already_revoked_json(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer(already=True))
    result = run("--serial", SERIAL, "--json", "--function-name", FUNCTION)
    assert result.code == 0
    info = json.loads(result.out)
    assert info["already_revoked"] is True
    assert (info["reason"], info["requested_reason"]) == ("keyCompromise", "unspecified")


# --------------------------------------------------------------------------------------------
# Refusals and failures


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("CertificateNotFound", f"no certificate with serial number {SERIAL} was issued by this CA"),
        ("InvalidRequest", "serial_number is longer than 20 octets (RFC 5280 4.1.2.2)"),
        ("InvalidRevocationReason", "cACompromise applies to CA certificates"),
    ],
)
def test_function_error_exits_2_with_code_and_message(
    run: Callable[..., Run], fn: FakeRevokeFunction, code: str, message: str
) -> None:
    fn.expect(
        {"serial_number": SERIAL, "reason": "unspecified"}, {"errorType": code, "errorMessage": message}, error=True
    )
    result = run("--serial", SERIAL, "--function-name", FUNCTION)
    assert result.code == 2
    assert result.err.strip() == f"error: {code}: {message}"
    assert result.out == ""


def test_aws_error_exits_1(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.stubber.add_client_error("invoke", "AccessDeniedException", "not allowed to invoke", 403)
    result = run("--serial", SERIAL, "--function-name", FUNCTION)
    assert result.code == 1
    assert result.err.strip() == "error: AccessDeniedException: not allowed to invoke"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (answer("0b"), "answered for serial '0b'"),
        (answer(reason="cACompromise"), "returned reason 'cACompromise'"),
        (answer(revoked_at="yesterday"), "returned revoked_at 'yesterday'"),
        ({"serial_number": SERIAL, "revoked_at": "2026-11-21T08:00:00Z", "reason": "unspecified"}, "already_revoked"),
    ],
)
def test_unexpected_answer_exits_1(
    run: Callable[..., Run], fn: FakeRevokeFunction, response: dict[str, Any], message: str
) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, response)
    result = run("--serial", SERIAL, "--function-name", FUNCTION)
    assert result.code == 1
    assert result.err.startswith("error: UnexpectedResponse: ")
    assert message in result.err


def _unused_lambda() -> Any:
    lam = stub_client("lambda")
    Stubber(lam).activate()  # no queued response: any call would fail the test
    return lam


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--serial", SERIAL, "--reason", "banana"], "InvalidRevocationReason", "'banana' is not one of unspecified"),
        (["--serial", SERIAL, "--reason", "cACompromise"], "InvalidRevocationReason", "applies to CA certificates"),
        (["--serial", SERIAL, "--reason", "aa-compromise"], "InvalidRevocationReason", "aACompromise applies"),
        (["--serial", SERIAL, "--reason", "removeFromCRL"], "InvalidRevocationReason", "is not one of"),
        (["--serial", "  "], "InvalidArgument", "--serial is empty"),
        (["--serial", SERIAL, "--invalidity-date", "yesterday"], "InvalidRequest", "not an ISO 8601 time"),
        (["--serial", SERIAL, "--invalidity-date", "2026-11-20T10:00:00"], "InvalidRequest", "with a UTC offset"),
        (["--cert", "missing.crt"], "InvalidArgument", "cannot read --cert missing.crt"),
        (["--cert", "junk.crt"], "InvalidArgument", "holds no PEM or DER certificate"),
        (["--cert", "ca.crt"], "InvalidArgument", "is a CA certificate"),
        (["--serial", SERIAL, "--timeout", "0"], "InvalidArgument", "--timeout must be positive"),
    ],
)
def test_local_refusals_send_nothing(
    run: Callable[..., Run], tmp_path: Path, argv: list[str], code: str, message: str
) -> None:
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    (tmp_path / "ca.crt").write_bytes(make_cert(5, ca=True, cn="Some CA").public_bytes(PEM))
    result = run(*argv, "--function-name", FUNCTION, lambda_client=_unused_lambda())
    assert result.code == 2
    assert result.err.startswith(f"error: {code}: ")
    assert message in result.err
    assert result.out == ""


@pytest.mark.parametrize("argv", [[], ["--serial", "01", "--cert", "x.crt"]])
def test_exactly_one_of_serial_and_cert(run: Callable[..., Run], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(*argv, "--function-name", FUNCTION)
    assert caught.value.code == 2


# --------------------------------------------------------------------------------------------
# Which function


def test_function_from_the_stack_output(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    cfn, cfn_stubber = cfn_stub("kmsca-test", {"IssueFunctionName": "issue", "RevokeFunctionName": "revoke-fn"})
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer(), function="revoke-fn")
    result = run("--serial", SERIAL, "--stack-name", "kmsca-test", "--json", cloudformation_client=cfn)
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert (info["function_name"], info["stack_name"]) == ("revoke-fn", "kmsca-test")
    cfn_stubber.assert_no_pending_responses()
    fn.stubber.assert_no_pending_responses()


ACM_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0b5c6d3e-1111-2222-3333-444455556666"


def test_an_origin_certificate_says_acm_serves_it_until_rotated_and_how_to_rotate_now(
    run: Callable[..., Run], fn: FakeRevokeFunction
) -> None:
    cfn, _ = cfn_stub(
        "kmsca-test",
        {"RevokeFunctionName": "revoke-fn", "RotateAcmFunctionName": "kmsca-test-RotateAcmFunction-x1"},
    )
    fn.expect(
        {"serial_number": SERIAL, "reason": "unspecified"}, answer(acm_certificate_arn=ACM_ARN), function="revoke-fn"
    )
    result = run("--serial", SERIAL, "--stack-name", "kmsca-test", cloudformation_client=cfn)
    assert result.code == 0, result.err
    assert result.err == (
        f"note: this certificate is imported into ACM as {ACM_ARN}; CloudFront keeps presenting it to your "
        "origin until the ACM rotation runs (RotateAcmFunction, on the AcmRotationSchedule, default daily), which "
        "re-issues it and re-imports the new one into the same ARN. To rotate now: "
        "aws lambda invoke --function-name kmsca-test-RotateAcmFunction-x1 rotation.json (as an identity allowed to "
        "invoke it, e.g. an administrator: the requester and reader policies are not)\n"
    )


def test_without_the_stack_the_note_names_the_output_to_read(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer(acm_certificate_arn=ACM_ARN))
    result = run("--serial", SERIAL, "--function-name", FUNCTION)
    assert result.code == 0, result.err
    assert "aws lambda invoke --function-name <the stack's RotateAcmFunctionName output> rotation.json" in result.err


def test_a_certificate_without_an_acm_arn_gets_no_rotation_note(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer())
    result = run("--serial", SERIAL, "--function-name", FUNCTION)
    assert result.code == 0, result.err
    assert result.err == ""


def test_stack_name_from_the_environment(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    cfn, _ = cfn_stub("kmsca-env", {"RevokeFunctionName": "revoke-fn"})
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer(), function="revoke-fn")
    result = run("--serial", SERIAL, environ={certcli.ENV_STACK_NAME: "kmsca-env"}, cloudformation_client=cfn)
    assert result.code == 0, result.err


def test_function_name_from_the_environment(run: Callable[..., Run], fn: FakeRevokeFunction) -> None:
    fn.expect({"serial_number": SERIAL, "reason": "unspecified"}, answer(), function="from-env")
    result = run("--serial", SERIAL, environ={certcli.ENV_REVOKE_FUNCTION_NAME: "from-env"})
    assert result.code == 0, result.err


def test_stack_without_the_revoke_output_is_refused(run: Callable[..., Run]) -> None:
    cfn, _ = cfn_stub("old-stack", {"IssueFunctionName": "issue"})
    result = run(
        "--serial", SERIAL, "--stack-name", "old-stack", cloudformation_client=cfn, lambda_client=_unused_lambda()
    )
    assert result.code == 2
    assert result.err.strip() == (
        "error: InvalidArgument: stack 'old-stack' has no RevokeFunctionName output; is it this project's stack?"
    )


def test_no_function_and_no_stack_is_refused(run: Callable[..., Run], tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("version = 0.1\n")
    result = run("--serial", SERIAL, "--samconfig", str(empty), lambda_client=_unused_lambda())
    assert result.code == 2
    assert "no revoke function: pass --function-name or --stack-name" in result.err
    assert certcli.ENV_REVOKE_FUNCTION_NAME in result.err


# --------------------------------------------------------------------------------------------
# The script as a user runs it


def test_script_help() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "revoke-cert.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    for text in ("--serial", "--cert", "--reason", "--invalidity-date", "--json", "--stack-name", "--function-name",
                 "--profile", "--region", "keyCompromise", "privilegeWithdrawn", "RevokeFunctionName"):  # fmt: skip
        assert text in result.stdout


def test_script_unreachable_endpoint_is_a_failure(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMSCA_"))}
    environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="eu-west-1",
        AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "revoke-cert.py"), "--serial", "0a", "--function-name", "f",
         "--timeout", "5"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: EndpointConnectionError: ")
