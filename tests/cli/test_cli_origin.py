"""``utils/cloudfront-origin-cert.py`` (``certcli.origin_main``) without the sandbox.

The Lambda and CloudFormation clients are real botocore clients behind a Stubber: the tests see
the exact request sent (no ``csr``, profile ``cloudfront-origin``, ``key_type``) and answer with a
certificate made by an in-memory CA, or with a ``FunctionError`` the way Lambda reports one.
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

import boto3
import certcli
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from botocore.validate import ParamValidator
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
FUNCTION = "kmsca-dev-IssueFunction"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0300c707-df1d-45aa-bd8a-79432d57d803"
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class OriginCa:
    """Root and issuing CA answering ``cloudfront-origin`` requests like the issue function:
    it generates the key (and drops it), signs a clientAuth certificate, names an ACM ARN."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca("Test Root CA", self.root_key, "Test Root CA", self.root_key, now)
        self.issuing = self._ca("Test Issuing CA", self.issuing_key, "Test Root CA", self.root_key, now)

    @staticmethod
    def _ca(subject: str, key: Any, issuer: str, signer: Any, now: dt.datetime) -> x509.Certificate:
        return (
            x509.CertificateBuilder(issuer_name=_name(issuer), subject_name=_name(subject), public_key=key.public_key(),
                                    serial_number=x509.random_serial_number(),
                                    not_valid_before=now - dt.timedelta(days=1),
                                    not_valid_after=now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )  # fmt: skip

    def response(
        self, request: dict[str, Any], *, eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH
    ) -> dict[str, Any]:
        """The issue function's answer to ``request`` (a cloudfront-origin request)."""
        key_type = request.get("key_type", "ec-p256")
        key: Any = (
            ec.generate_private_key(ec.SECP256R1())
            if key_type == "ec-p256"
            else rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.split("-")[1]))
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(request["subject"]["common_name"]))
            .issuer_name(self.issuing.subject)
            .public_key(key.public_key())
            .serial_number(0x0A1B2C)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=request.get("lifetime_days", 90)))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .sign(self.issuing_key, hashes.SHA256())
        )
        return {
            "serial_number": "0a1b2c",
            "certificate": cert.public_bytes(PEM).decode(),
            "certificate_chain": (self.issuing.public_bytes(PEM) + self.root.public_bytes(PEM)).decode(),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "subject": cert.subject.rfc4514_string(),
            "profile": "cloudfront-origin",
            "acm_certificate_arn": ARN,
        }


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def _payload(body: dict[str, Any]) -> StreamingBody:
    data = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(data), len(data))


class StubbedLambda:
    """A Lambda client behind a Stubber; ``sent`` holds the decoded Invoke payloads."""

    def __init__(self) -> None:
        self.client = _client("lambda")
        self.stubber = Stubber(self.client)
        self.sent: list[dict[str, Any]] = []
        self.client.meta.events.register("before-parameter-build.lambda.Invoke", self._capture)
        self.stubber.activate()

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(json.loads(params["Payload"]))

    def answer(self, body: dict[str, Any], function_error: str | None = None, function: str = FUNCTION) -> None:
        response: dict[str, Any] = {"StatusCode": 200, "Payload": _payload(body)}
        if function_error:
            response["FunctionError"] = function_error
        self.stubber.add_response(
            "invoke", response, {"FunctionName": function, "InvocationType": "RequestResponse", "Payload": ANY}
        )


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def ca() -> OriginCa:
    return OriginCa()


@pytest.fixture
def lam() -> StubbedLambda:
    return StubbedLambda()


@pytest.fixture
def run(lam: StubbedLambda, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    monkeypatch.chdir(tmp_path)

    def _run(
        *argv: str, environ: dict[str, str] | None = None, check_existing: bool = False, **clients: Any
    ) -> Run:
        """``check_existing=False`` passes --allow-second: only its own tests ask the inventory."""
        clients.setdefault("lambda_client", lam.client)
        out, err = io.StringIO(), io.StringIO()
        code = certcli.origin_main(
            [*argv, *([] if check_existing else ["--allow-second"])],
            clients=certcli.AwsClients(**clients),
            environ=environ or {},
            stdout=out,
            stderr=err,
        )
        return Run(code, out.getvalue(), err.getvalue())

    return _run


def answer_with(lam: StubbedLambda, ca: OriginCa, request: dict[str, Any], **kwargs: Any) -> None:
    lam.answer(ca.response(request, **kwargs))


def snippet_from(text: str) -> dict[str, Any]:
    """The JSON object printed after 'Paste this into ...' (from its '{' line to its '}' line)."""
    lines = text.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    return json.loads("\n".join(lines[start : end + 1]))


# --------------------------------------------------------------------------------------------
# The request


def test_request_has_no_csr_and_the_default_key_type(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin.example.com"}})
    result = run("origin.example.com", "--function-name", FUNCTION)
    assert result.code == 0, result.err
    lam.stubber.assert_no_pending_responses()
    (sent,) = lam.sent
    assert "csr" not in sent
    assert sent["profile"] == "cloudfront-origin"
    assert "key_type" not in sent  # the issue function picks the one of its issuing CA's algorithm
    assert sent["subject"] == {"common_name": "origin.example.com"}
    assert sent["sans"] == [{"type": "dns", "value": "origin.example.com"}]  # the name is the DNS name
    assert "ec-p256 (generated by the issue function" in result.out  # the type it chose, from the certificate
    assert "lifetime_days" not in sent
    assert len(sent["idempotency_key"]) == 32  # a random key per run: retries never import twice


def test_options_reach_the_request(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin"}, "key_type": "rsa-2048", "lifetime_days": 30})
    result = run(
        "--cn", "origin", "--key-type", "rsa-2048", "--lifetime-days", "30", "-O", "Example Ltd", "-C", "GB",
        "--idempotency-key", "deploy-42", "--san", "origin.internal", "--san", "ip:10.0.0.7",
        "--function-name", FUNCTION,
    )  # fmt: skip
    assert result.code == 0, result.err
    (sent,) = lam.sent
    assert sent == {
        "profile": "cloudfront-origin",
        "key_type": "rsa-2048",
        "subject": {"common_name": "origin", "organization": "Example Ltd", "country": "GB"},
        "idempotency_key": "deploy-42",
        "sans": [{"type": "dns", "value": "origin.internal"}, {"type": "ip", "value": "10.0.0.7"}],
        "lifetime_days": 30,
    }
    assert "rsa-2048 (generated by the issue function; it exists only in ACM)" in result.out


def test_common_name_defaults_to_the_first_san(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "a.example"}})
    assert run("--san", "a.example", "--san", "b.example", "--function-name", FUNCTION).code == 0
    assert lam.sent[0]["subject"] == {"common_name": "a.example"}


# --------------------------------------------------------------------------------------------
# What it prints and writes


def test_prints_the_arn_and_a_valid_origin_mtls_config(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa, tmp_path: Path
) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin.example.com"}})
    result = run("origin.example.com", "--function-name", FUNCTION)
    assert result.code == 0, result.err
    assert f"ACM ARN        {ARN}" in result.out
    assert "in ACM in us-east-1" in result.out
    assert "serial number  0a1b2c" in result.out
    snippet = snippet_from(result.out)
    assert snippet == {"OriginMtlsConfig": {"ClientCertificateArn": ARN}}
    assert "PRIVATE KEY" not in result.out + result.err
    assert list(tmp_path.iterdir()) == []  # no --out-dir: no file at all


def test_snippet_fits_cloudfronts_custom_origin_config() -> None:
    """The snippet is valid in the place the text says: botocore's model of CustomOriginConfig."""
    model = boto3.session.Session().client("cloudfront", region_name="us-east-1").meta.service_model
    shape = model.shape_for("CustomOriginConfig")
    config = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only", **certcli.origin_mtls_config(ARN)}
    report = ParamValidator().validate(config, shape)
    assert not report.has_errors(), report.generate_report()


def test_json_summary(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin"}})
    result = run("origin", "--function-name", FUNCTION, "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["acm_certificate_arn"] == ARN
    assert info["acm_region"] == "us-east-1"
    assert info["origin_mtls_config"] == {"OriginMtlsConfig": {"ClientCertificateArn": ARN}}
    assert (info["serial_number"], info["subject"], info["profile"], info["key_type"]) == (
        "0a1b2c", "CN=origin", "cloudfront-origin", "ec-p256",
    )  # fmt: skip
    assert (info["files"], info["written"]) == ({}, [])
    assert not any("key" in name and name != "key_type" for name in info)


def test_out_dir_gets_certificate_and_chain_but_no_key(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa, tmp_path: Path
) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin.example.com"}})
    result = run("origin.example.com", "--function-name", FUNCTION, "--out-dir", "certs", "--json")
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "certs").iterdir())
    assert names == ["origin.example.com.chain.pem", "origin.example.com.crt"]
    leaf = x509.load_pem_x509_certificate((tmp_path / "certs" / "origin.example.com.crt").read_bytes())
    chain = x509.load_pem_x509_certificates((tmp_path / "certs" / "origin.example.com.chain.pem").read_bytes())
    assert [c.subject for c in chain] == [ca.issuing.subject, ca.root.subject]
    assert leaf not in chain
    assert json.loads(result.out)["written"] == [
        str(Path("certs") / "origin.example.com.crt"),
        str(Path("certs") / "origin.example.com.chain.pem"),
    ]


def test_existing_files_are_refused_before_issuing(run: Callable[..., Run], lam: StubbedLambda, tmp_path: Path) -> None:
    (tmp_path / "o.crt").write_text("mine")
    result = run("o", "--function-name", FUNCTION, "--out-dir", ".")
    assert result.code == 2
    assert result.err.startswith("error: FileExists: ")
    assert lam.sent == []
    assert (tmp_path / "o.crt").read_text() == "mine"


def test_an_out_dir_that_is_a_file_is_refused_before_issuing(
    run: Callable[..., Run], lam: StubbedLambda, tmp_path: Path
) -> None:
    (tmp_path / "certs").write_text("not a directory")
    result = run("o", "--function-name", FUNCTION, "--out-dir", "certs")
    assert result.code == 2
    assert result.err == "error: InvalidArgument: --out-dir certs: certs is not a directory\n"
    assert lam.sent == []


def test_a_write_failure_after_issuance_prints_serial_arn_pem_and_how_to_fetch_it(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin.example.com"}})

    def unwritable(*_: Any) -> Path:
        raise PermissionError(13, "Permission denied", "certs/.origin.example.com.crt.tmp")

    monkeypatch.setattr(certcli.files, "_stage", unwritable)
    result = run("origin.example.com", "--function-name", FUNCTION, "--out-dir", "certs")
    assert result.code == 1
    first, *rest = result.err.splitlines()
    serial = first.split("certificate ", 1)[1].split(" ", 1)[0]
    assert first.startswith(f"error: WriteFailed: certificate {serial} was issued but not saved: Permission denied")
    assert "it is in ACM as arn:aws:acm:us-east-1:" in first
    assert f"'python utils/certs.py show {serial} --json'" in first
    assert "private key" not in first  # the key lives in ACM
    leaf = x509.load_pem_x509_certificate("\n".join(rest).encode())
    assert certcli.serial_to_hex(leaf.serial_number) == serial


def test_function_found_from_the_stack_outputs(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    cfn = _client("cloudformation")
    stubber = Stubber(cfn)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "kmsca-dev",
                    "CreationTime": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": "IssueFunctionName", "OutputValue": "from-stack"}],
                }
            ]
        },
        {"StackName": "kmsca-dev"},
    )
    stubber.activate()
    lam.answer(ca.response({"subject": {"common_name": "o"}}), function="from-stack")
    result = run("o", "--stack-name", "kmsca-dev", "--json", cloudformation_client=cfn)
    assert result.code == 0, result.err
    assert json.loads(result.out)["function_name"] == "from-stack"


def _stack_with(outputs: dict[str, str]) -> Any:
    cfn = _client("cloudformation")
    stubber = Stubber(cfn)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "kmsca-dev",
                    "CreationTime": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": "kmsca-dev"},
    )
    stubber.activate()
    return cfn


OUTPUTS = {
    "IssueFunctionName": "issue-fn",
    "InventoryFunctionName": "inventory-fn",
    "RotateAcmFunctionName": "kmsca-dev-RotateAcmFunction-x1",
}
EXISTING_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"


def test_a_second_origin_certificate_for_a_name_is_refused_naming_the_first_and_how_to_rotate(
    run: Callable[..., Run], lam: StubbedLambda
) -> None:
    existing = {
        "serial_number": "7f01",
        "subject": "CN=origin.example.com",
        "sans": ["dns:origin.example.com"],
        "profile": "cloudfront-origin",
        "status": "issued",
        "not_after": "2027-02-01T00:00:00Z",
        "acm_certificate_arn": EXISTING_ARN,
    }
    other = {**existing, "sans": ["dns:origin.example.com.other.example"], "serial_number": "7f02"}
    lam.answer({"certificates": [other, existing]}, function="inventory-fn")
    result = run("origin.example.com", "--stack-name", "kmsca-dev", check_existing=True, cloudformation_client=_stack_with(OUTPUTS))
    assert result.code == 2
    assert result.err == (
        f"error: CertificateExists: origin.example.com already has a CloudFront origin certificate in ACM: "
        f"{EXISTING_ARN} (serial 7f01, valid until 2027-02-01T00:00:00Z). The ACM rotation function re-issues it "
        "into the same ARN before it expires; to rotate it now: aws lambda invoke --function-name "
        "kmsca-dev-RotateAcmFunction-x1 rotation.json (as an identity allowed to invoke it, e.g. an administrator). "
        "Pass --allow-second to import a second certificate under a new ARN\n"
    )
    (asked,) = lam.sent  # the inventory only: nothing was issued
    assert asked["operation"] == "list" and asked["profile"] == "cloudfront-origin" and asked["status"] == "issued"
    assert asked["name_contains"] == "origin.example.com"


def test_without_an_existing_certificate_the_request_goes_on(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa
) -> None:
    lam.answer({"certificates": []}, function="inventory-fn")
    lam.answer(ca.response({"subject": {"common_name": "o"}}), function="issue-fn")
    result = run("o", "--stack-name", "kmsca-dev", check_existing=True, cloudformation_client=_stack_with(OUTPUTS))
    assert result.code == 0, result.err
    assert [sent.get("operation", "issue") for sent in lam.sent] == ["list", "issue"]
    assert result.err == ""


def test_an_explicit_idempotency_key_is_a_retry_and_skips_the_check(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa
) -> None:
    lam.answer(ca.response({"subject": {"common_name": "o"}}), function="issue-fn")
    result = run(
        "o", "--stack-name", "kmsca-dev", "--idempotency-key", "deploy-9", check_existing=True,
        cloudformation_client=_stack_with(OUTPUTS),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert [sent.get("operation", "issue") for sent in lam.sent] == ["issue"]


def test_without_an_inventory_function_it_warns_and_goes_on(
    run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa
) -> None:
    lam.answer(ca.response({"subject": {"common_name": "o"}}))
    result = run("o", "--function-name", FUNCTION, check_existing=True)
    assert result.code == 0, result.err
    assert result.err == (
        "warning: cannot check for an existing origin certificate of this name: no inventory function "
        "(pass --stack-name, or set KMSCA_INVENTORY_FUNCTION_NAME)\n"
    )


# --------------------------------------------------------------------------------------------
# Refusals and failures


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("KeyPolicyViolation", "key_type 'rsa-4096' is not allowed for profile 'cloudfront-origin'"),
        ("LifetimeExceeded", "lifetime_days 1000 is above the maximum of 365 days"),
        ("InvalidRequest", "profile 'cloudfront-origin' takes no csr: the CA generates the key, because ACM needs it"),
    ],
)
def test_refusal_by_the_function_exits_2_with_its_code(
    run: Callable[..., Run], lam: StubbedLambda, tmp_path: Path, code: str, message: str
) -> None:
    lam.answer({"errorType": code, "errorMessage": message, "stackTrace": []}, function_error="Unhandled")
    result = run("origin", "--function-name", FUNCTION, "--out-dir", "certs")
    assert result.code == 2
    assert result.err == f"error: {code}: {message}\n"
    assert result.out == ""
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize("key_type", ["rsa-4096", "ec-p384", "rsa-3072", "ed25519"])
def test_key_types_cloudfront_refuses_are_refused_before_any_call(
    run: Callable[..., Run], lam: StubbedLambda, key_type: str
) -> None:
    result = run("origin", "--function-name", FUNCTION, "--key-type", key_type)
    assert result.code == 2
    assert result.err.startswith(f"error: KeyPolicyViolation: --key-type '{key_type}': ")
    assert "ec-p256, rsa-2048" in result.err
    assert lam.sent == []


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        ((), "InvalidArgument"),
        (("o", "--san", "bad name"), "InvalidSubjectAlternativeName"),
        (("o", "--san", "a.example", "--san", "a.example"), "InvalidSubjectAlternativeName"),
        (("o", "--country", "GBR"), "InvalidSubject"),
        (("o", "--name", "x"), "InvalidArgument"),
        (("o", "--idempotency-key", " "), "InvalidArgument"),
    ],
)
def test_local_refusals(run: Callable[..., Run], lam: StubbedLambda, argv: tuple[str, ...], code: str) -> None:
    result = run(*argv, "--function-name", FUNCTION)
    assert result.code == 2
    assert result.err.startswith(f"error: {code}: ")
    assert lam.sent == []


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda r: r.update(acm_certificate_arn=ARN.replace("us-east-1", "eu-west-1")),
            "imported into ACM in eu-west-1",
        ),
        (lambda r: r.pop("acm_certificate_arn"), "has no ACM certificate ARN"),
        (lambda r: r.update(private_key="-----BEGIN PRIVATE KEY-----\n..."), "returned a private key"),
        (lambda r: r.update(serial_number="0a1b2d"), "does not match the certificate's serial"),
    ],
)
def test_unexpected_response_exits_1_and_writes_nothing(
    run: Callable[..., Run],
    lam: StubbedLambda,
    ca: OriginCa,
    tmp_path: Path,
    tamper: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    body = ca.response({"subject": {"common_name": "o"}})
    tamper(body)
    lam.answer(body)
    result = run("o", "--function-name", FUNCTION, "--out-dir", "certs")
    assert result.code == 1
    assert result.err.startswith("error: UnexpectedResponse: ")
    assert message in result.err
    assert "PRIVATE KEY" not in result.out + result.err
    assert not (tmp_path / "certs").exists()


def test_server_auth_certificate_is_rejected(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    lam.answer(ca.response({"subject": {"common_name": "o"}}, eku=ExtendedKeyUsageOID.SERVER_AUTH))
    result = run("o", "--function-name", FUNCTION)
    assert result.code == 1
    assert "does not allow client authentication" in result.err


def test_key_of_another_type_is_rejected(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    lam.answer(ca.response({"subject": {"common_name": "o"}, "key_type": "rsa-2048"}))
    result = run("o", "--key-type", "ec-p256", "--function-name", FUNCTION)
    assert result.code == 1
    assert "does not carry an ec-p256 key" in result.err


def test_script_help(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMSCA_"))}
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "cloudfront-origin-cert.py"), "--help"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for text in ("OriginMtlsConfig", "us-east-1", "--key-type", "--out-dir", "--stack-name", "--idempotency-key"):
        assert text in result.stdout


# --------------------------------------------------------------------------------------------
# Edge targets (issue 10): the workload account whose ACM receives the certificate


def test_target_reaches_the_request_and_the_summary(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    workload_arn = "arn:aws:acm:us-east-1:222222222222:certificate/0a1b2c3d-0000-4000-8000-000000000000"
    lam.answer({**ca.response({"subject": {"common_name": "origin"}}), "acm_certificate_arn": workload_arn,
                "acm_target": "prod", "acm_account_id": "222222222222"})  # fmt: skip
    result = run("origin", "--function-name", FUNCTION, "--target", "prod", "--json")
    assert result.code == 0, result.err
    (sent,) = lam.sent
    assert sent["target"] == "prod"
    info = json.loads(result.out)
    assert (info["acm_target"], info["acm_account_id"], info["acm_certificate_arn"]) == (
        "prod", "222222222222", workload_arn)  # fmt: skip


def test_no_target_sends_none(run: Callable[..., Run], lam: StubbedLambda, ca: OriginCa) -> None:
    answer_with(lam, ca, {"subject": {"common_name": "origin"}})
    assert run("origin", "--function-name", FUNCTION).code == 0
    (sent,) = lam.sent
    assert "target" not in sent


@pytest.mark.parametrize("name", ["Prod", "-prod", "a" * 64, "prod_1", "prod\n"])
def test_a_malformed_target_is_refused_before_any_call(run: Callable[..., Run], lam: StubbedLambda, name: str) -> None:
    result = run("origin", "--function-name", FUNCTION, f"--target={name}")
    assert result.code == 2 and result.err.startswith("error: InvalidTarget:")
    assert lam.sent == []
