"""Unit tests of the operator CLIs' shared code (utils/certcli/), without the sandbox.

AWS is replaced at the botocore level: Stubber for CloudFormation, S3 and Lambda refusals,
and a ``before-send`` hook that answers Lambda ``Invoke`` with an in-memory CA for the
success path, so botocore still parses real HTTP responses (``X-Amz-Function-Error``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certcli
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from tests.support.cli_stubs import cfn_stub, stub_client

REGION = "eu-west-1"
FUNCTION = "kmsca-dev-IssueFunction-abc123"
BUCKET = "kmsca-dev-publicbucket-xyz"
BUNDLE_URI = f"s3://{BUCKET}/ca-bundle.pem"
PEM = serialization.Encoding.PEM


# --------------------------------------------------------------------------------------------
# An in-memory CA standing in for the issue function


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


class FakeCa:
    """Root + issuing CA that signs CSRs like the issue function's contract says.

    ``refuse`` makes it answer with a FunctionError; ``tamper`` lets a test corrupt the response.
    """

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _ca_cert("Test Root CA", self.root_key, "Test Root CA", self.root_key)
        self.issuing = _ca_cert("Test Issuing CA", self.issuing_key, "Test Root CA", self.root_key)
        self.requests: list[dict[str, Any]] = []
        self.refuse: tuple[str, dict[str, Any]] | None = None
        self.tamper: Callable[[dict[str, Any]], None] | None = None

    @property
    def bundle(self) -> bytes:
        return self.root.public_bytes(PEM) + self.issuing.public_bytes(PEM)

    @property
    def chain_pem(self) -> str:
        return (self.issuing.public_bytes(PEM) + self.root.public_bytes(PEM)).decode()

    def answer(self, request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        self.requests.append(request)
        if self.refuse:
            return self.refuse
        csr = x509.load_pem_x509_csr(request["csr"].encode())
        assert csr.is_signature_valid
        eku = ExtendedKeyUsageOID.SERVER_AUTH if request.get("profile") == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.issuing.subject)
            .public_key(csr.public_key())
            .serial_number(0x0ABC)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=request.get("lifetime_days", 90)))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .sign(self.issuing_key, hashes.SHA256())
        )
        body = {
            "serial_number": "0abc",
            "certificate": cert.public_bytes(PEM).decode(),
            "certificate_chain": self.chain_pem,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "subject": cert.subject.rfc4514_string(),
            "profile": request.get("profile", "client"),
        }
        if self.tamper:
            self.tamper(body)
        return None, body


class _RawBody(io.BytesIO):
    """What botocore reads an HTTP body from (``read`` for streams, ``stream`` for content)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def lambda_client_for(ca: FakeCa) -> Any:
    """A real botocore Lambda client whose Invoke is answered by ``ca`` over fake HTTP."""
    client = stub_client("lambda")

    def before_send(request: Any, **_: Any) -> AWSResponse:
        function_error, body = ca.answer(json.loads(request.body))
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        return AWSResponse(request.url, 200, headers, _RawBody(json.dumps(body).encode()))

    client.meta.events.register("before-send.lambda.Invoke", before_send)
    return client


def s3_stub(data: bytes | None) -> tuple[Any, Stubber]:
    client = stub_client("s3")
    stubber = Stubber(client)
    if data is not None:
        stubber.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(data), len(data))},
            {"Bucket": BUCKET, "Key": "ca-bundle.pem"},
        )
    stubber.activate()
    return client, stubber


class Run:
    """Result of one :func:`certcli.main` call."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def ca() -> FakeCa:
    return FakeCa()


@pytest.fixture
def run(ca: FakeCa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run the CLI in ``tmp_path`` with the fake CA; keyword arguments replace the clients."""
    monkeypatch.chdir(tmp_path)

    def _run(*argv: str, profile: str = certcli.CLIENT, environ: dict[str, str] | None = None, **clients: Any) -> Run:
        clients.setdefault("lambda_client", lambda_client_for(ca))
        clients.setdefault("s3_client", s3_stub(ca.bundle)[0])
        out, err = io.StringIO(), io.StringIO()
        code = certcli.main(
            list(argv),
            profile=profile,
            clients=certcli.AwsClients(**clients),
            environ=environ or {},
            stdin=io.StringIO(),
            stdout=out,
            stderr=err,
        )
        return Run(code, out.getvalue(), err.getvalue())

    return _run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------------------------
# SAN parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", certcli.San("dns", "example.com")),
        ("dns:api.example.com", certcli.San("dns", "api.example.com")),
        ("DNS:Mixed.Example.com", certcli.San("dns", "Mixed.Example.com")),
        ("*.example.com", certcli.San("dns", "*.example.com")),
        ("localhost", certcli.San("dns", "localhost")),
        ("bücher.example", certcli.San("dns", "xn--bcher-kva.example")),
        ("ip:127.0.0.1", certcli.San("ip", "127.0.0.1")),
        ("ip:::1", certcli.San("ip", "::1")),
        ("IP:2001:DB8:0::1", certcli.San("ip", "2001:db8::1")),
        ("email:ops@example.com", certcli.San("email", "ops@example.com")),
        ("uri:spiffe://example.org/ns/prod/sa/api", certcli.San("uri", "spiffe://example.org/ns/prod/sa/api")),
        (
            "uri:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            certcli.San("uri", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"),
        ),
    ],
)
def test_parse_san_accepts(text: str, expected: certcli.San) -> None:
    assert certcli.parse_san(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty value"),
        ("dns:", "empty value"),
        ("ip:999.1.1.1", "not an IPv4 or IPv6 address"),
        ("ip:example.com", "not an IPv4 or IPv6 address"),
        ("127.0.0.1", "write ip:127.0.0.1"),
        ("ops@example.com", "write email:ops@example.com"),
        ("email:nobody.example.com", "exactly one '@'"),
        ("email:a@", "exactly one '@'"),
        ("email:a@b@c", "exactly one '@'"),
        ("uri:no-scheme", "needs a scheme"),
        ("x500:CN=foo", "unknown SAN type"),
        ("a..b.com", "empty label"),
        ("example.com.", "trailing dot"),
        ("*.*.example.com", "label '*'"),
        ("foo.*.example.com", "label '*'"),
        ("*", "label '*'"),
        ("-bad.example.com", "label '-bad'"),
        ("under_score.example.com", "label 'under_score'"),
        ("has space.example.com", "white space"),
        ("uri:a:\x00", "control characters"),
        ("email:ü@example.com", "must be ASCII"),
        ("uri:https://ü.example/", "must be ASCII"),
        ("ip:fe80::1%eth0", "IPv6 zone"),
        ("a" * 64 + ".example.com", "is not a DNS name"),
        ("a." * 127 + "com", "at most 253"),
    ],
)
def test_parse_san_refuses(text: str, reason: str) -> None:
    with pytest.raises(certcli.Refused) as caught:
        certcli.parse_san(text)
    assert caught.value.code == "InvalidSubjectAlternativeName"
    assert reason in caught.value.message
    assert caught.value.exit_code == certcli.EXIT_REFUSED


@pytest.mark.parametrize(
    ("text", "a_label"),
    [
        ("dns:straße.example.com", "xn--strae-oqa.example.com"),  # IDNA 2008, not IDNA 2003's strasse
        ("*.bücher.example", "*.xn--bcher-kva.example"),
    ],
)
def test_an_internationalised_name_becomes_its_idna_2008_a_label_and_keeps_the_given_form(
    text: str, a_label: str
) -> None:
    san = certcli.parse_san(text)
    assert san.value == a_label
    assert certcli.idn_notes([san]) == [f"--san dns:{text.removeprefix('dns:')} -> {a_label}"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Straße.example.com", "UTS 46 would map it to 'straße.example.com' (xn--strae-oqa.example.com)"),
        ("\uff33\uff34\uff32\uff21\uff33\uff33\uff25.example.com", "UTS 46 would map it to 'strasse.example.com'"),
        ("e\u0301.example", "Unicode normalisation"),
        ("xn--zz.example.com", "label 'xn--zz' is not a valid IDNA A-label"),
        ("bücher..example", "not a valid internationalised domain name"),
    ],
)
def test_a_name_uts46_would_rewrite_or_a_bad_a_label_is_refused_with_what_it_would_become(
    text: str, reason: str
) -> None:
    with pytest.raises(certcli.Refused) as caught:
        certcli.parse_san(text)
    assert caught.value.code == "InvalidSubjectAlternativeName"
    assert reason in caught.value.message


def test_the_cli_shows_the_a_label_it_requests_on_stderr(run: Callable[..., Run], ca: FakeCa) -> None:
    result = run("shop", "--san", "dns:straße.example.com", "--function-name", FUNCTION, profile=certcli.SERVER)
    assert result.code == 0, result.err
    assert "note: --san dns:straße.example.com -> xn--strae-oqa.example.com" in result.err
    assert ca.requests[0]["sans"] == [{"type": "dns", "value": "xn--strae-oqa.example.com"}]


_CSR_KEY = ec.generate_private_key(ec.SECP256R1())


@given(st.tuples(st.sampled_from(["", "dns:", "ip:", "email:", "uri:", "IP:"]), st.text(max_size=60)))
def test_parse_san_refuses_with_its_code_or_accepts_an_encodable_name(parts: tuple[str, str]) -> None:
    text = "".join(parts)
    try:
        san = certcli.parse_san(text)
    except certcli.Refused as exc:
        assert exc.code == "InvalidSubjectAlternativeName"
        return
    assert san.type in {"dns", "ip", "email", "uri"}
    csr = certcli.build_csr(_CSR_KEY, "ec-p256", certcli.RequestedSubject("x"), (san,))
    assert csr.public_bytes(serialization.Encoding.DER)  # every accepted value encodes


# --------------------------------------------------------------------------------------------
# Keys and CSR


@pytest.mark.parametrize(
    ("key_type", "cls", "size", "csr_hash"),
    [
        ("ec-p256", ec.EllipticCurvePrivateKey, 256, hashes.SHA256),
        ("ec-p384", ec.EllipticCurvePrivateKey, 384, hashes.SHA384),
        ("rsa-2048", rsa.RSAPrivateKey, 2048, hashes.SHA256),
        ("rsa-3072", rsa.RSAPrivateKey, 3072, hashes.SHA256),
        ("rsa-4096", rsa.RSAPrivateKey, 4096, hashes.SHA256),
    ],
)
def test_key_types(key_type: str, cls: type, size: int, csr_hash: type) -> None:
    key = certcli.generate_private_key(key_type)
    assert isinstance(key, cls)
    assert key.key_size == size
    if isinstance(key, rsa.RSAPrivateKey):
        assert key.public_key().public_numbers().e == 65537
    csr = certcli.build_csr(key, key_type, certcli.RequestedSubject("x"), ())
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, csr_hash)


def test_default_key_type_is_p256() -> None:
    args = certcli.build_parser(certcli.CLIENT).parse_args(["x"])
    assert args.key_type == "ec-p256"


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(certcli.Refused, match="unknown key type 'ed25519'"):
        certcli.generate_private_key("ed25519")


def test_csr_contents() -> None:
    key = certcli.generate_private_key("ec-p256")
    subject = certcli.RequestedSubject(
        common_name="device-42",
        organization="Example Ltd",
        organizational_unit="Fleet",
        country="GB",
        state="London",
        locality="Camden",
        email_address="fleet@example.com",
    )
    sans = (certcli.San("dns", "device-42.example.com"), certcli.San("ip", "10.0.0.42"), certcli.San("uri", "urn:x"))
    csr = certcli.build_csr(key, "ec-p256", subject, sans)

    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert csr.subject.rfc4514_string() == (
        "1.2.840.113549.1.9.1=fleet@example.com,CN=device-42,OU=Fleet,O=Example Ltd,L=Camden,ST=London,C=GB"
    )
    assert [e.oid for e in csr.extensions] == [x509.OID_SUBJECT_ALTERNATIVE_NAME]
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [s.to_general_name() for s in sans]


def test_csr_without_sans_has_no_extensions() -> None:
    key = certcli.generate_private_key("ec-p256")
    csr = certcli.build_csr(key, "ec-p256", certcli.RequestedSubject("alice"), ())
    assert list(csr.extensions) == []
    assert csr.subject == _name("alice")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"common_name": "x" * 65}, "common name"),
        ({"common_name": "x", "country": "GBR"}, "--country"),
        ({"common_name": "x", "organization": " "}, "--organization is empty"),
    ],
)
def test_bad_subject_is_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(certcli.Refused) as caught:
        certcli.RequestedSubject(**fields).to_name()
    assert caught.value.code == "InvalidSubject"
    assert message in caught.value.message


def test_request_payload_shape() -> None:
    request = certcli.CliIssueRequest(
        csr="PEM", profile="server", sans=(certcli.San("dns", "a.example"),), lifetime_days=30, idempotency_key="k"
    )
    assert request.to_payload() == {
        "csr": "PEM",
        "profile": "server",
        "sans": [{"type": "dns", "value": "a.example"}],
        "lifetime_days": 30,
        "idempotency_key": "k",
    }
    assert certcli.CliIssueRequest(csr="PEM", profile="client").to_payload() == {"csr": "PEM", "profile": "client"}


@pytest.mark.parametrize(
    ("number", "text"), [(1, "01"), (0xABC, "0abc"), (0xFF00, "ff00"), (2**159 - 1, "7f" + "ff" * 19)]
)
def test_serial_to_hex_is_canonical(number: int, text: str) -> None:
    assert certcli.serial_to_hex(number) == text


# --------------------------------------------------------------------------------------------
# Names and files


@pytest.mark.parametrize(
    ("common_name", "stem"),
    [
        ("device-42", "device-42"),
        ("*.example.com", "wildcard.example.com"),
        ("Alice Smith / ops", "Alice_Smith_ops"),
        ("../../etc/passwd", "etc_passwd"),
        ("...", "certificate"),
    ],
)
def test_default_name_is_safe(common_name: str, stem: str) -> None:
    assert certcli.default_name(common_name) == stem


@given(st.text(max_size=200))
def test_default_name_is_always_a_valid_name(common_name: str) -> None:
    name = certcli.default_name(common_name)
    certcli.plan_outputs(Path("out"), name, pkcs12_file=False)  # does not raise


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 129, "sp ace"])
def test_unsafe_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(certcli.Refused, match="--name"):
        certcli.plan_outputs(tmp_path, name, pkcs12_file=False)


def _plan(directory: Path, bundle: bytes = b"bundle\n") -> certcli.OutputPlan:
    plan = certcli.plan_outputs(directory, "svc", pkcs12_file=True)
    plan.content.update(
        key=b"key\n", certificate=b"crt\n", chain=b"chain\n", fullchain=b"full\n", ca_bundle=bundle, pkcs12=b"p12"
    )
    return plan


def test_write_outputs_modes(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        written = certcli.write_outputs(_plan(tmp_path / "new" / "dir"), force=False)
    finally:
        os.umask(old)
    directory = tmp_path / "new" / "dir"
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["svc.key", "svc.crt", "svc.chain.pem", "svc.fullchain.pem", "ca-bundle.pem", "svc.p12"]
    )
    assert len(written) == 6
    assert _mode(directory / "svc.key") == 0o600
    assert _mode(directory / "svc.p12") == 0o600
    assert _mode(directory / "svc.crt") == 0o644
    assert (directory / "svc.key").read_bytes() == b"key\n"


def test_secret_files_are_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        certcli.write_outputs(_plan(tmp_path), force=False)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "svc.key") == 0o600
    assert _mode(tmp_path / "svc.p12") == 0o600


def test_key_file_is_created_0600_not_chmodded_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        opened.append((os.fspath(path), mode))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", spy)
    certcli.write_outputs(_plan(tmp_path), force=False)
    key_opens = [mode for path, mode in opened if ".svc.key." in path]
    assert key_opens == [0o600]


def test_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "svc.crt").write_bytes(b"precious")
    with pytest.raises(certcli.Refused) as caught:
        certcli.write_outputs(_plan(tmp_path), force=False)
    assert caught.value.code == "FileExists"
    assert "svc.crt" in caught.value.message and "--force" in caught.value.message
    assert [p.name for p in tmp_path.iterdir()] == ["svc.crt"]
    assert (tmp_path / "svc.crt").read_bytes() == b"precious"


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "svc.key").write_bytes(b"old")
    os.chmod(tmp_path / "svc.key", 0o644)
    certcli.write_outputs(_plan(tmp_path), force=True)
    assert (tmp_path / "svc.key").read_bytes() == b"key\n"
    assert _mode(tmp_path / "svc.key") == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_identical_ca_bundle_is_kept_different_one_is_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "ca-bundle.pem").write_bytes(b"bundle\n")
    written = certcli.write_outputs(_plan(tmp_path), force=False)
    assert "ca-bundle.pem" not in {f.path.name for f in written}

    other = tmp_path / "other"
    other.mkdir()
    (other / "ca-bundle.pem").write_bytes(b"another CA\n")
    with pytest.raises(certcli.Refused, match=r"ca-bundle\.pem"):
        certcli.write_outputs(_plan(other), force=False)
    assert [p.name for p in other.iterdir()] == ["ca-bundle.pem"]


def test_file_appearing_during_write_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_link = os.link

    def racing_link(src: Any, dst: Any, **kw: Any) -> None:
        if os.fspath(dst).endswith("svc.chain.pem"):
            Path(dst).write_bytes(b"someone else")
        real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(certcli.Refused, match=r"svc\.chain\.pem"):
        certcli.write_outputs(_plan(tmp_path), force=False)
    assert [p.name for p in tmp_path.iterdir()] == ["svc.chain.pem"]
    assert (tmp_path / "svc.chain.pem").read_bytes() == b"someone else"


# --------------------------------------------------------------------------------------------
# The whole command, against a fake issue function


def test_issue_writes_checked_files(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    result = run(
        "device-42",
        "--san",
        "dns:device-42.example.com",
        "--function-name",
        FUNCTION,
        "--ca-bundle-uri",
        BUNDLE_URI,
        "--lifetime-days",
        "30",
        "--out-dir",
        "out",
    )

    assert result.code == 0, result.err
    out = tmp_path / "out"
    key = serialization.load_pem_private_key((out / "device-42.key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((out / "device-42.crt").read_bytes())
    assert cert.public_key() == key.public_key()
    assert (out / "device-42.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert _mode(out / "device-42.key") == 0o600
    assert (out / "device-42.chain.pem").read_text() == ca.chain_pem
    assert (out / "device-42.fullchain.pem").read_bytes() == cert.public_bytes(PEM) + ca.chain_pem.encode()
    assert (out / "ca-bundle.pem").read_bytes() == ca.bundle

    request = ca.requests[0]
    assert request["profile"] == "client"
    assert request["lifetime_days"] == 30
    assert request["sans"] == [{"type": "dns", "value": "device-42.example.com"}]
    assert len(request["idempotency_key"]) == 32  # random per run unless given

    assert "serial number  0abc" in result.out
    assert "device-42.fullchain.pem" in result.out
    assert "PRIVATE KEY" not in result.out + result.err


def test_json_summary(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    result = run("svc", "--function-name", FUNCTION, "--json", "--idempotency-key", "retry-1")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["serial_number"] == "0abc"
    assert info["subject"] == "CN=svc"
    assert info["profile"] == "client"
    assert info["not_after"].endswith("Z")
    assert info["key_type"] == "ec-p256"
    assert info["function_name"] == FUNCTION
    assert info["files"]["key"] == "svc.key"
    assert info["ca_bundle_source"] == "the returned chain"
    assert ca.requests[0]["idempotency_key"] == "retry-1"


def test_without_bucket_the_bundle_is_built_from_the_chain(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    s3, s3_stubber = s3_stub(None)
    result = run("svc", "--function-name", FUNCTION, s3_client=s3)
    assert result.code == 0, result.err
    assert (tmp_path / "ca-bundle.pem").read_bytes() == ca.bundle  # root first, then issuing
    s3_stubber.assert_no_pending_responses()


def test_function_and_bundle_found_from_stack_outputs(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    cfn, cfn_stubber = cfn_stub("kmsca-test", {"IssueFunctionName": FUNCTION, "CaBundleS3Uri": BUNDLE_URI})
    result = run("svc", "--stack-name", "kmsca-test", "--json", cloudformation_client=cfn)
    assert result.code == 0, result.err
    assert json.loads(result.out)["ca_bundle_source"] == BUNDLE_URI
    cfn_stubber.assert_no_pending_responses()


def test_stack_name_from_samconfig(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "kmsca-dev"\n'
        '[prod.deploy.parameters]\nstack_name = "kmsca-prod"\nregion = "us-east-1"\n'
    )
    assert certcli.default_stack_name(config, "default") == "kmsca-dev"
    assert certcli.default_stack_name(config, "prod") == "kmsca-prod"
    with pytest.raises(certcli.Refused) as caught:
        certcli.default_stack_name(config, "staging")
    assert caught.value.message == (
        "samconfig.toml has no [staging.*] section (environments: default, prod): pass --config-env, "
        "--stack-name or --function-name"
    )
    assert certcli.samconfig_region(config, "prod") == "us-east-1"
    assert certcli.samconfig_region(config, "default") is None


def test_a_stack_that_does_not_exist_names_the_region_and_how_to_set_it() -> None:
    cfn = stub_client("cloudformation")
    stubber = Stubber(cfn)
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id kmsca-dev does not exist", 400, {"StackName": "kmsca-dev"}
    )
    stubber.activate()
    with pytest.raises(certcli.CliError) as caught:
        certcli.resolve_target(lambda: cfn, function_name=None, stack_name="kmsca-dev", ca_bundle_uri=None)
    assert caught.value.code == "StackNotFound"
    assert caught.value.message == (
        f"stack 'kmsca-dev' does not exist in {REGION}: pass --region (or set AWS_REGION, or region in "
        "samconfig.toml), or --stack-name / KMSCA_STACK_NAME for another stack"
    )


def test_missing_credentials_say_how_to_configure_them_or_use_the_sandbox() -> None:
    from botocore.exceptions import NoCredentialsError

    code, message = certcli.explain_aws_error(NoCredentialsError())
    assert code == "NoCredentialsError"
    assert "configure them (aws configure, aws sso login, AWS_PROFILE or --profile)" in message
    assert "export the line './dev.sh sandbox' prints" in message


@pytest.mark.parametrize(
    ("environ", "hint"),
    [
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
            "AWS_ENDPOINT_URL is http://127.0.0.1:4566: start the sandbox there (./dev.sh sandbox) or unset it",
        ),
        ({}, "for the local sandbox start ./dev.sh sandbox and export its AWS_ENDPOINT_URL"),
    ],
)
def test_an_unreachable_endpoint_is_named_with_the_next_step(environ: dict[str, str], hint: str) -> None:
    from botocore.exceptions import EndpointConnectionError

    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/2015-03-31/functions/f/invocations")
    code, message = certcli.explain_aws_error(error, environ)
    assert code == "EndpointConnectionError"
    assert message.startswith("cannot connect to http://127.0.0.1:4566/2015-03-31/functions/f/invocations; ")
    assert hint in message


def test_stack_without_the_output_is_refused() -> None:
    cfn, _ = cfn_stub("other", {"SomethingElse": "x"})
    with pytest.raises(certcli.Refused, match="no IssueFunctionName output"):
        certcli.resolve_target(lambda: cfn, function_name=None, stack_name="other", ca_bundle_uri=None)


def test_function_error_exits_2_with_code_and_message(run: Callable[..., Run], tmp_path: Path) -> None:
    lam = stub_client("lambda")
    stubber = Stubber(lam)
    payload = json.dumps(
        {"errorType": "LifetimeExceeded", "errorMessage": "lifetime_days 4000 is above the maximum of 365"}
    )
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": StreamingBody(io.BytesIO(payload.encode()), len(payload)),
        },
        {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": ANY},
    )
    stubber.activate()
    result = run("svc", "--function-name", FUNCTION, "--lifetime-days", "4000", lambda_client=lam)

    assert result.code == 2
    assert result.err.strip() == "error: LifetimeExceeded: lifetime_days 4000 is above the maximum of 365"
    assert result.out == ""
    assert list(tmp_path.iterdir()) == []
    stubber.assert_no_pending_responses()


def test_function_error_over_http(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    ca.refuse = ("Unhandled", {"errorType": "KeyPolicyViolation", "errorMessage": "RSA keys must have 2048 bits"})
    result = run("svc", "--function-name", FUNCTION, "--key-type", "rsa-2048")
    assert result.code == 2
    assert result.err.strip() == "error: KeyPolicyViolation: RSA keys must have 2048 bits"
    assert list(tmp_path.iterdir()) == []


def test_crash_without_error_type(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    ca.refuse = ("Unhandled", {})
    result = run("svc", "--function-name", FUNCTION)
    assert result.code == 2
    assert result.err.startswith("error: Unhandled: ")
    assert list(tmp_path.iterdir()) == []


def test_aws_error_exits_1(run: Callable[..., Run], tmp_path: Path) -> None:
    lam = stub_client("lambda")
    stubber = Stubber(lam)
    stubber.add_client_error("invoke", "ResourceNotFoundException", "Function not found: nope", 404)
    stubber.activate()
    result = run("svc", "--function-name", "nope", lambda_client=lam)
    assert result.code == 1
    assert result.err.strip() == "error: ResourceNotFoundException: Function not found: nope"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda body: body.update(serial_number="0abd"), "does not match the certificate's serial"),
        (lambda body: body.update(serial_number="abc"), "does not match the certificate's serial"),
        (lambda body: body.update(certificate_chain=""), "no readable certificate"),
        (lambda body: body.pop("certificate"), "no readable certificate"),
    ],
)
def test_inconsistent_response_exits_1_and_writes_nothing(
    run: Callable[..., Run], ca: FakeCa, tmp_path: Path, tamper: Callable[[dict[str, Any]], None], message: str
) -> None:
    ca.tamper = tamper
    result = run("svc", "--function-name", FUNCTION)
    assert result.code == 1
    assert result.err.startswith("error: UnexpectedResponse: ")
    assert message in result.err
    assert list(tmp_path.iterdir()) == []


def test_certificate_for_another_key_is_rejected(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())

    def swap_key(body: dict[str, Any]) -> None:
        cert = x509.load_pem_x509_certificate(body["certificate"].encode())
        forged = x509.CertificateBuilder(
            cert.issuer,
            cert.subject,
            other.public_key(),
            cert.serial_number,
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
            list(cert.extensions),
        ).sign(ca.issuing_key, hashes.SHA256())
        body["certificate"] = forged.public_bytes(PEM).decode()

    ca.tamper = swap_key
    result = run("svc", "--function-name", FUNCTION)
    assert result.code == 1
    assert "public key is not the key generated for this request" in result.err
    assert list(tmp_path.iterdir()) == []


def test_certificate_not_signed_by_the_chain_is_rejected(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    impostor = FakeCa()
    ca.tamper = lambda body: body.update(certificate_chain=impostor.chain_pem)
    result = run("svc", "--function-name", FUNCTION)
    assert result.code == 1
    assert "is not signed by" in result.err


def test_a_write_failure_after_issuance_prints_the_serial_the_pem_and_the_next_steps(
    run: Callable[..., Run], ca: FakeCa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unwritable(*_: Any) -> Path:
        raise PermissionError(13, "Permission denied", "out/.device-42.key.tmp")

    monkeypatch.setattr(certcli.files, "_stage", unwritable)  # the directory became unwritable
    result = run("device-42", "--function-name", FUNCTION, "--out-dir", "out")
    assert result.code == 1
    assert len(ca.requests) == 1
    first, *rest = result.err.splitlines()
    serial = first.split("certificate ", 1)[1].split(" ", 1)[0]
    assert first == (
        f"error: WriteFailed: certificate {serial} was issued but not saved: Permission denied "
        f"(out/.device-42.key.tmp); the certificate is printed below; fetch it again with "
        f"'python utils/certs.py show {serial} --json'; its private key was not saved: revoke it "
        f"('python utils/revoke-cert.py {serial}') and issue again"
    )
    leaf = x509.load_pem_x509_certificate("\n".join(rest).encode())
    assert certcli.serial_to_hex(leaf.serial_number) == serial


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "out").write_text("x"), "--out-dir out: out is not a directory"),
        (lambda d: (d / "out" / "device-42.crt").mkdir(parents=True), "is a directory; choose another --name"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_ca_is_called(
    run: Callable[..., Run], ca: FakeCa, tmp_path: Path, setup: Callable[[Path], Any], message: str
) -> None:
    setup(tmp_path)
    result = run("device-42", "--function-name", FUNCTION, "--out-dir", "out", "--force")
    assert result.code == 2
    assert message in result.err
    assert ca.requests == []


def test_a_read_only_out_dir_is_refused_before_the_ca_is_called(
    run: Callable[..., Run], ca: FakeCa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(certcli.files.os, "access", lambda path, mode: False)  # root may write anywhere
    result = run("device-42", "--function-name", FUNCTION, "--out-dir", "out")
    assert result.code == 2
    assert result.err == "error: InvalidArgument: --out-dir out: out is not writable; choose another --out-dir\n"
    assert ca.requests == []


def _git_repo(path: Path, gitignore: str | None) -> Path:
    import shutil
    import subprocess

    if not shutil.which("git"):
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if gitignore is not None:
        (path / ".gitignore").write_text(gitignore)
    return path


@pytest.mark.parametrize(
    ("gitignore", "state"),
    [
        ("*.key\n*.p12\n", "its .gitignore covers them; keep it that way and never commit them"),
        (None, "its .gitignore does NOT cover them: add them (e.g. *.key, *.p12) or choose another --out-dir"),
    ],
)
def test_a_key_written_into_a_git_work_tree_is_warned_about_naming_gitignore(
    run: Callable[..., Run], tmp_path: Path, gitignore: str | None, state: str
) -> None:
    repo = _git_repo(tmp_path / "repo", gitignore)
    result = run("device-42", "--function-name", FUNCTION, "--out-dir", "repo/out")
    assert result.code == 0, result.err
    assert (
        f"warning: private key files (repo/out/device-42.key) go into the git work tree {repo.resolve()}: {state} "
        "(--no-git-warning silences this)"
    ) in result.err.splitlines()


def test_no_git_warning_outside_a_work_tree_or_with_the_flag(run: Callable[..., Run], tmp_path: Path) -> None:
    assert "git work tree" not in run("a", "--function-name", FUNCTION, "--out-dir", "plain").err
    _git_repo(tmp_path / "repo", None)
    result = run("b", "--function-name", FUNCTION, "--out-dir", "repo", "--no-git-warning")
    assert result.code == 0, result.err
    assert "git work tree" not in result.err


def test_server_profile_gets_server_auth(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    result = run("svc.example", "--san", "svc.example", "--function-name", FUNCTION, profile=certcli.SERVER)
    assert result.code == 0, result.err
    assert ca.requests[0]["profile"] == "server"
    cert = x509.load_pem_x509_certificate((tmp_path / "svc.example.crt").read_bytes())
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_wrong_eku_is_rejected(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    answer = ca.answer
    ca.answer = lambda request: answer({**request, "profile": "client"})  # type: ignore[method-assign]
    result = run("svc.example", "--san", "svc.example", "--function-name", FUNCTION, profile=certcli.SERVER)
    assert result.code == 1
    assert "does not allow server authentication" in result.err
    assert list(tmp_path.iterdir()) == []


def test_bundle_that_does_not_hold_the_issuer_is_rejected(run: Callable[..., Run], tmp_path: Path) -> None:
    s3, _ = s3_stub(FakeCa().bundle)
    result = run("svc", "--function-name", FUNCTION, "--ca-bundle-uri", BUNDLE_URI, s3_client=s3)
    assert result.code == 1
    assert result.err.startswith("error: InvalidCaBundle: ")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_bundle_falls_back_to_the_chain_with_a_warning(
    run: Callable[..., Run], ca: FakeCa, tmp_path: Path
) -> None:
    s3 = stub_client("s3")
    stubber = Stubber(s3)
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    stubber.activate()
    result = run("svc", "--function-name", FUNCTION, "--ca-bundle-uri", BUNDLE_URI, s3_client=s3)
    assert result.code == 0
    assert "warning: cannot read s3://" in result.err
    assert (tmp_path / "ca-bundle.pem").read_bytes() == ca.bundle


# --------------------------------------------------------------------------------------------
# Refusals before anything is sent (the Lambda client has no stubbed response: a call would fail)


def _unused_lambda() -> Any:
    lam = stub_client("lambda")
    Stubber(lam).activate()
    return lam


@pytest.mark.parametrize(
    ("argv", "profile", "code", "message"),
    [
        (["web"], certcli.SERVER, "InvalidSubjectAlternativeName", "needs at least one --san"),
        ([], certcli.CLIENT, "InvalidArgument", "common name is required"),
        (["a", "--common-name", "b"], certcli.CLIENT, "InvalidArgument", "give the common name once"),
        (["a", "--san", "ip:300.0.0.1"], certcli.CLIENT, "InvalidSubjectAlternativeName", "not an IPv4"),
        (
            ["a", "--san", "x.example", "--san", "dns:x.example"],
            certcli.CLIENT,
            "InvalidSubjectAlternativeName",
            "twice",
        ),
        (["a", "--country", "United Kingdom"], certcli.CLIENT, "InvalidSubject", "--country"),
        (["a", "--name", "../a"], certcli.CLIENT, "InvalidArgument", "--name"),
        (["a", "--pkcs12"], certcli.CLIENT, "InvalidArgument", "needs a password"),
        (["a", "--pkcs12-legacy"], certcli.CLIENT, "InvalidArgument", "need --pkcs12"),
        (["a", "--ca-bundle-uri", "https://x/y"], certcli.CLIENT, "InvalidArgument", "s3://bucket/key"),
    ],
)
def test_local_refusals(
    run: Callable[..., Run], tmp_path: Path, argv: list[str], profile: str, code: str, message: str
) -> None:
    result = run(*argv, "--function-name", FUNCTION, profile=profile, lambda_client=_unused_lambda())
    assert result.code == 2
    assert result.err.startswith(f"error: {code}: ")
    assert message in result.err
    assert list(tmp_path.iterdir()) == []


def test_existing_files_refused_before_issuing(run: Callable[..., Run], ca: FakeCa, tmp_path: Path) -> None:
    (tmp_path / "svc.key").write_bytes(b"keep me")
    result = run("svc", "--function-name", FUNCTION, lambda_client=_unused_lambda())
    assert result.code == 2
    assert result.err.startswith("error: FileExists: ")
    assert [p.name for p in tmp_path.iterdir()] == ["svc.key"]
    assert (tmp_path / "svc.key").read_bytes() == b"keep me"

    result = run("svc", "--function-name", FUNCTION, "--force")
    assert result.code == 0, result.err
    assert (tmp_path / "svc.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_different_published_bundle_refused_before_issuing(run: Callable[..., Run], tmp_path: Path) -> None:
    (tmp_path / "ca-bundle.pem").write_bytes(b"another CA\n")
    result = run("svc", "--function-name", FUNCTION, "--ca-bundle-uri", BUNDLE_URI, lambda_client=_unused_lambda())
    assert result.code == 2
    assert "ca-bundle.pem" in result.err


def test_second_certificate_into_the_same_directory_keeps_the_bundle(run: Callable[..., Run], tmp_path: Path) -> None:
    assert run("one", "--function-name", FUNCTION, "--ca-bundle-uri", BUNDLE_URI).code == 0
    result = run("two", "--function-name", FUNCTION, "--ca-bundle-uri", BUNDLE_URI)
    assert result.code == 0, result.err
    assert "kept  ca-bundle.pem" in result.out


def test_no_target_is_refused(run: Callable[..., Run], tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("version = 0.1\n")
    result = run("svc", "--samconfig", str(empty), lambda_client=_unused_lambda())
    assert result.code == 2
    assert "pass --function-name or --stack-name" in result.err


def test_function_name_from_environment(run: Callable[..., Run], ca: FakeCa) -> None:
    result = run("svc", environ={certcli.ENV_FUNCTION_NAME: FUNCTION}, lambda_client=lambda_client_for(ca))
    assert result.code == 0, result.err


# --------------------------------------------------------------------------------------------
# PKCS#12


@pytest.mark.parametrize("legacy", [False, True])
def test_pkcs12_from_password_file(run: Callable[..., Run], tmp_path: Path, legacy: bool) -> None:
    (tmp_path / "pw").write_text("correct horse\n")
    extra = ["--pkcs12-legacy"] if legacy else []
    result = run("svc", "--function-name", FUNCTION, "--pkcs12", "--pkcs12-password-file", "pw", *extra)
    assert result.code == 0, result.err
    assert "correct horse" not in result.out + result.err
    p12 = tmp_path / "svc.p12"
    assert _mode(p12) == 0o600
    bundle = pkcs12.load_pkcs12(p12.read_bytes(), b"correct horse")
    cert = x509.load_pem_x509_certificate((tmp_path / "svc.crt").read_bytes())
    assert bundle.cert is not None and bundle.cert.certificate == cert
    assert bundle.key is not None and bundle.key.public_key() == cert.public_key()
    assert [c.certificate.subject for c in bundle.additional_certs] == [_name("Test Issuing CA"), _name("Test Root CA")]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(p12.read_bytes(), b"wrong")


def test_pkcs12_password_from_environment(run: Callable[..., Run], tmp_path: Path) -> None:
    result = run("svc", "--function-name", FUNCTION, "--pkcs12", environ={"P12_PW": "s3cret"})
    assert result.code == 2  # the default variable is not set and stdin is not a terminal
    result = run(
        "svc", "--function-name", FUNCTION, "--pkcs12", "--pkcs12-password-env", "P12_PW", environ={"P12_PW": "s3cret"}
    )
    assert result.code == 0, result.err
    assert pkcs12.load_pkcs12((tmp_path / "svc.p12").read_bytes(), b"s3cret").key is not None


def test_empty_pkcs12_password_is_refused(run: Callable[..., Run], tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    result = run(
        "svc", "--function-name", FUNCTION, "--pkcs12", "--pkcs12-password-file", "pw", lambda_client=_unused_lambda()
    )
    assert result.code == 2
    assert "is empty" in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["pw"]
