"""The demo's machinery without the sandbox: the mutual-TLS server and clients, how a failed
step is reported (later steps skipped, exit status 1, the sandbox's output shown), and the
CloudFront steps' checks (ACM us-east-1 behind a Stubber, a stand-in KeyValueStore, the
connection function under Node.js)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.wait import wait_until
from utils import demo
from utils.demo import constants as demo_constants
from utils.demo import crls as demo_crls
from utils.demo import nginx as demo_nginx
from utils.demo import tls as demo_tls
from utils.demo import x509_text as demo_x509
from utils.demo.steps import accounts as accounts_steps
from utils.demo.steps import cloudfront as cloudfront_steps
from utils.demo.steps import nginx as nginx_steps
from utils.demo.steps import revocation as revocation_steps

PEM = serialization.Encoding.PEM


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return path


class Pki:
    """A root CA, a localhost server certificate and a client certificate, as files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unit Test CA")])
        self.ca = (
            x509.CertificateBuilder(name, name, self.ca_key.public_key(), x509.random_serial_number(),
                                    now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )  # fmt: skip
        self.bundle = directory / "ca-bundle.pem"
        self.bundle.write_bytes(self.ca.public_bytes(PEM))
        self.server = self._leaf(
            directory, "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )  # fmt: skip
        self.client = self._leaf(directory, "demo-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
        self.revoked = self._leaf(directory, "demo-client-2", ExtendedKeyUsageOID.CLIENT_AUTH, [], serial=0x0A0B0C)
        self.crls = directory / "crls.pem"
        self.crls.write_bytes(self.crl([0x0A0B0C]).public_bytes(PEM))

    def crl(self, serials: list[int], number: int = 7) -> x509.CertificateRevocationList:
        """A CRL of this CA listing ``serials`` (reason keyCompromise)."""
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(hours=24))
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - dt.timedelta(minutes=1))
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
        return builder.sign(self.ca_key, hashes.SHA256())

    def _leaf(
        self,
        directory: Path,
        cn: str,
        eku: x509.ObjectIdentifier,
        sans: list[x509.GeneralName],
        serial: int = 0x0102030405,
    ) -> tuple[Path, Path]:
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        chain = directory / f"{cn}.fullchain.pem"
        chain.write_bytes(cert.public_bytes(PEM) + self.ca.public_bytes(PEM))
        return chain, _write_key(directory / f"{cn}.key", key)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def server(pki: Pki) -> demo_tls.MtlsServer:
    with demo_tls.MtlsServer(*pki.server, pki.bundle) as running:
        yield running


def _revocation(
    crl_number_before: int = 0, revoked_at: str = "", recorded_wall: float = 0.0
) -> demo.Revocation:
    """What step_revoke hands on for serial 0a0b0c, revoke-cert.py having returned now."""
    return demo.Revocation("0a0b0c", crl_number_before, revoked_at, time.monotonic(), recorded_wall)


def _demo(tmp_path: Path) -> demo.Demo:
    return demo.Demo(out_dir=tmp_path, work=tmp_path, sandbox=demo.SandboxProcess(tmp_path, timeout=1))


@pytest.mark.parametrize("tls12", [False, True])
def test_python_client_with_issued_certificate_is_accepted(pki: Pki, server: demo_tls.MtlsServer, tls12: bool) -> None:
    client = demo_tls.TlsClient("ours", "python", *pki.client, expect_accept=True, tls12=tls12)
    accepted, seen = demo_tls.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert accepted, seen
    assert event.accepted
    assert event.subject == "CN=demo-client"
    assert event.serial_number == "0102030405"
    assert ("TLSv1.2" if tls12 else "TLSv1.3") in seen


@pytest.mark.parametrize("tls12", [False, True])
def test_python_client_without_certificate_is_refused(pki: Pki, server: demo_tls.MtlsServer, tls12: bool) -> None:
    client = demo_tls.TlsClient("none", "python", None, None, expect_accept=False, tls12=tls12)
    accepted, seen = demo_tls.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert not accepted
    assert seen.startswith("refused: ")
    assert not event.accepted
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in event.detail


def test_certificate_from_another_ca_is_refused(pki: Pki, server: demo_tls.MtlsServer, tmp_path: Path) -> None:
    chain, key = demo_tls.foreign_client_cert(tmp_path / "other")
    assert key.stat().st_mode & 0o777 == 0o600
    accepted, _ = demo_tls.python_client(demo_tls.TlsClient("other", "python", chain, key, False), server.port, pki.bundle)
    event = server.next_event()
    assert not accepted and not event.accepted
    assert "CERTIFICATE_VERIFY_FAILED" in event.detail


def test_server_certificate_is_not_a_client_certificate(pki: Pki, server: demo_tls.MtlsServer) -> None:
    client = demo_tls.TlsClient("server as client", "python", *pki.server, expect_accept=False)
    accepted, _ = demo_tls.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert not accepted and not event.accepted
    assert "unsuitable certificate purpose" in event.detail


def test_openssl_client(pki: Pki, server: demo_tls.MtlsServer, tmp_path: Path) -> None:
    runner = _demo(tmp_path)
    accepted, seen = demo_tls.openssl_client(
        runner, demo_tls.TlsClient("ours", "openssl", *pki.client, True), server.port, pki.bundle
    )
    assert accepted, seen
    assert "Verification: OK" in seen
    assert server.next_event().accepted

    accepted, seen = demo_tls.openssl_client(
        runner, demo_tls.TlsClient("none", "openssl", None, None, False), server.port, pki.bundle
    )
    assert not accepted
    assert "alert certificate required" in seen
    assert not server.next_event().accepted


def test_a_server_that_accepts_everything_would_be_caught(pki: Pki, tmp_path: Path) -> None:
    """The refusal check is real: against a server that does not ask for certificates, 'no certificate' is accepted."""
    lax = demo_tls.MtlsServer(*pki.server, pki.bundle)
    lax.context.verify_mode = ssl.CERT_NONE
    with lax:
        accepted, _ = demo_tls.python_client(demo_tls.TlsClient("none", "python", None, None, False), lax.port, pki.bundle)
    assert accepted


def test_failed_sandbox_is_reported_and_dependent_steps_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        demo.SandboxProcess, "command", lambda self, port: [sys.executable, "-c", "print('port in use'); raise SystemExit(3)"]
    )
    assert demo.main(["--out-dir", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "FAIL: the sandbox exited with status 3" in out
    assert "| port in use" in out
    assert "SKIP: needs sandbox" in out
    assert f"FAILED: 1/{len(demo.STEPS)} steps passed" in out


def test_sandbox_that_never_gets_ready_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        demo.SandboxProcess, "command", lambda self, port: [sys.executable, "-c", "import time; time.sleep(60)"]
    )
    sandbox = demo.SandboxProcess(tmp_path, timeout=0.5)
    with pytest.raises(demo.StepFailed, match="no state file after"):
        sandbox.start()
    assert sandbox.stop().startswith("stopped")
    assert sandbox.process is not None and sandbox.process.poll() is not None


def test_excerpt_joins_values_on_the_next_line() -> None:
    text = "        X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n        Other: x\n"
    assert demo_x509.excerpt(text) == ["X509v3 Extended Key Usage: TLS Web Client Authentication"]


# --------------------------------------------------------------------------------------------
# Revocation steps' machinery


def test_crl_helpers(pki: Pki) -> None:
    crl = pki.crl([0x0A0B0C, 0x05], number=42)
    assert demo_crls.crl_number(crl) == 42
    assert demo_crls.entries(crl) == "2 entries"
    assert demo_crls.entries(pki.crl([0x05])) == "1 entry"
    entry = demo_crls.listed(crl, "0a0b0c")
    assert entry is not None and demo_crls.entry_reason(entry) == "keyCompromise"
    assert demo_crls.listed(crl, "0102030405") is None


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (200, "hello CN=x serial 0A verify SUCCESS\n", "200 hello CN=x serial 0A verify SUCCESS"),
        (
            400,
            "<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n<body>...</body></html>",
            "400 The SSL certificate error",
        ),
        (None, "connection failed: EOF", "connection failed: EOF"),
    ],
)
def test_http_summary(status: int | None, body: str, shown: str) -> None:
    assert demo_nginx.http_summary(status, body) == shown


def test_python_server_with_crls_refuses_the_revoked_client(pki: Pki) -> None:
    with demo_tls.MtlsServer(*pki.server, pki.bundle, crl_file=pki.crls) as server:
        accepted, seen = demo_tls.python_client(
            demo_tls.TlsClient("good", "python", *pki.client, True), server.port, pki.bundle
        )
        event = server.next_event()
        assert accepted and event.accepted, (seen, event)

        for tls12 in (False, True):
            client = demo_tls.TlsClient("revoked", "python", *pki.revoked, False, tls12=tls12)
            accepted, seen = demo_tls.python_client(client, server.port, pki.bundle)
            event = server.next_event()
            assert not accepted and not event.accepted
            assert "certificate revoked" in event.detail


def test_python_server_without_a_crl_for_the_ca_refuses_everyone(pki: Pki, tmp_path: Path) -> None:
    """VERIFY_CRL_CHECK_CHAIN needs a CRL for every CA: a CRL file without ours is a refusal, not a pass."""
    other_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    other_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")]))
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(hours=1))
        .sign(other_key, hashes.SHA256())
    )
    crls = tmp_path / "other-crl.pem"
    crls.write_bytes(other_crl.public_bytes(PEM))
    with demo_tls.MtlsServer(*pki.server, pki.bundle, crl_file=crls) as server:
        accepted, _ = demo_tls.python_client(demo_tls.TlsClient("good", "python", *pki.client, True), server.port, pki.bundle)
        event = server.next_event()
    assert not accepted and not event.accepted
    assert "unable to get certificate CRL" in event.detail


@pytest.mark.skipif(demo_nginx.find_nginx() is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_with_crls(pki: Pki, tmp_path: Path) -> None:
    runner = _demo(tmp_path)
    nginx_binary = demo_nginx.find_nginx()
    assert nginx_binary is not None
    with demo_nginx.Nginx(
        nginx_binary, tmp_path / "nginx", fullchain=pki.server[0], key=pki.server[1], ca_bundle=pki.bundle,
        crls=pki.crls,
    ) as nginx:  # fmt: skip
        status, body = demo_nginx.python_https_get(nginx.port, pki.bundle, *pki.client)
        assert status == 200, body
        assert "serial 0102030405 verify SUCCESS" in body
        status, body = demo_nginx.openssl_https_get(runner, nginx.port, pki.bundle, *pki.client)
        assert status == 200, body
        status, body = demo_nginx.python_https_get(nginx.port, pki.bundle, *pki.revoked)
        assert status == 400
        assert "The SSL certificate error" in body
        status, body = demo_nginx.openssl_https_get(runner, nginx.port, pki.bundle, *pki.revoked)
        assert status == 400
        status, body = demo_nginx.python_https_get(nginx.port, pki.bundle, None, None)
        assert (status, demo_nginx.http_summary(status, body)) == (400, "400 No required SSL certificate was sent")
        wait_until(  # nginx writes its error log line a moment after answering
            lambda: any("certificate revoked" in line for line in nginx.log_lines("verify error")),
            timeout=10, what="nginx's verify error for the revoked certificate",
        )
        process = nginx.process
    assert process is not None and process.poll() is not None  # stopped on exit


def test_nginx_that_cannot_start_is_reported(pki: Pki, tmp_path: Path) -> None:
    nginx_binary = demo_nginx.find_nginx() or sys.executable  # python exits at once on nginx's options too
    missing = tmp_path / "no-such-crls.pem"
    with (
        pytest.raises(demo.StepFailed, match="exited with status"),
        demo_nginx.Nginx(
            nginx_binary,
            tmp_path / "nginx",
            fullchain=pki.server[0],
            key=pki.server[1],
            ca_bundle=pki.bundle,
            crls=missing,
        ),  # fmt: skip
    ):
        pass


def test_missing_nginx_is_a_clear_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_nginx, "find_nginx", lambda: None)
    with pytest.raises(demo.StepFailed, match=r"nginx is not installed.*apt-get install nginx-light"):
        nginx_steps.step_nginx(_demo(tmp_path))


def test_crl_wait_times_out_with_a_clear_message(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the stream-triggered publication the step fails after the wait, naming what it saw."""
    runner = _demo(tmp_path)
    crl = pki.crl([0x05], number=3)
    calls: list[str] = []

    def fetch(_: demo.Demo, key: str) -> tuple[x509.CertificateRevocationList, bytes, dict[str, str]]:
        calls.append(key)
        return crl, crl.public_bytes(serialization.Encoding.DER), {"crl-number": "3"}

    monkeypatch.setattr(revocation_steps, "fetch_crl", fetch)
    monkeypatch.setattr(revocation_steps, "CRL_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(revocation_steps, "CRL_POLL_SECONDS", 0.1)
    runner.state.revocation = _revocation(crl_number_before=3)
    with pytest.raises(
        demo.StepFailed, match=r"no published issuing.crl lists 0a0b0c 0.5 s after .*\(still number 3, 1 entry"
    ):
        revocation_steps.step_crl_published(runner)
    assert len(calls) >= 3
    assert set(calls) == {"issuing.crl"}


def test_crl_wait_checks_what_it_finds(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _demo(tmp_path)
    runner.state.published = demo.PublishedCa(pki.bundle, pki.bundle, pki.bundle)  # the test CA signs the CRL
    crl = pki.crl([0x0A0B0C], number=4)
    monkeypatch.setattr(
        revocation_steps, "fetch_crl", lambda _d, _k: (crl, crl.public_bytes(serialization.Encoding.DER), {"crl-number": "4"})
    )
    runner.state.revocation = revocation = _revocation(crl_number_before=3)
    assert "CRL number 3 -> 4 lists the revoked serial" in revocation_steps.step_crl_published(runner)

    revocation.crl_number_before = 4  # a CRL number that did not increase is a failure
    with pytest.raises(demo.StepFailed, match="CRL number 4 is not above 4"):
        revocation_steps.step_crl_published(runner)

    (tmp_path / "forged").mkdir()
    forged = Pki(tmp_path / "forged").crl([0x0A0B0C], 9)  # same issuer name, another key
    monkeypatch.setattr(
        revocation_steps, "fetch_crl", lambda _d, _k: (forged, forged.public_bytes(serialization.Encoding.DER), {"crl-number": "9"})
    )
    with pytest.raises(demo.StepFailed, match="its signature does not verify under the issuing CA's key"):
        revocation_steps.step_crl_published(runner)


def test_crl_excerpt(pki: Pki, tmp_path: Path) -> None:
    der = tmp_path / "issuing.crl"
    der.write_bytes(pki.crl([0x0A0B0C], number=12).public_bytes(serialization.Encoding.DER))
    text = _demo(tmp_path).run(["openssl", "crl", "-inform", "DER", "-in", str(der), "-noout", "-text"]).stdout
    lines = demo_x509.excerpt(text, demo_x509.CRL_EXCERPT)
    assert "X509v3 CRL Number: 12" in lines
    assert "Serial Number: 0A0B0C" in lines
    assert "X509v3 CRL Reason Code: Key Compromise" in lines


# --------------------------------------------------------------------------------------------
# CloudFront steps' machinery: the origin certificate in ACM, the KeyValueStore, the connection function


@pytest.mark.parametrize(
    ("serial", "shown"),
    [(0x4A3F05, "4a:3f:05"), (0x8F01, "00:8f:01"), (0x0A1B, "0a:1b"), (0x01, "01"), (0x80, "00:80"), (0x7F, "7f")],
)
def test_colon_hex_is_the_der_integer_as_cloudfront_shows_it(serial: int, shown: str) -> None:
    assert demo_x509.colon_hex(serial) == shown


def _origin_leaf(pki: Pki, key: Any, eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, demo_constants.ORIGIN_CN)]))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(0x4A3F05)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )


ACM_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0300c707-df1d-45aa-bd8a-79432d57d803"


class OriginSetup:
    """What step_origin_cert sees: the CLI's --json answer and files, and ACM behind a Stubber."""

    def __init__(self, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import boto3

        self.pki = pki
        self.runner = _demo(tmp_path)
        self.runner.sandbox.state = {"region": "eu-west-1", "stack_name": "kmsca-dev", "outputs": {}}
        self.leaf = _origin_leaf(pki, ec.generate_private_key(ec.SECP256R1()))
        self.acm_leaf = self.leaf
        self.arn = ACM_ARN
        self.key_algorithm = "EC_prime256v1"
        self.ekus = [{"Name": "TLS_WEB_CLIENT_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.2"}]
        self.acm_chain = [pki.ca]
        self.acm_error: str | None = None
        self.acm = boto3.client("acm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        self.regions: list[str | None] = []
        monkeypatch.setattr(demo.Demo, "cli", self._cli)
        monkeypatch.setattr(demo.Demo, "client", self._client)

    def _cli(self, script: str, *args: str) -> Any:  # bound to this setup, so Demo's self is not passed
        assert script == "cloudfront-origin-cert.py"
        assert "--json" in args
        crt, chain = self.runner.out_dir / "origin.crt", self.runner.out_dir / "origin.chain.pem"
        crt.write_bytes(self.leaf.public_bytes(PEM))
        chain.write_bytes(self.pki.ca.public_bytes(PEM))
        info = {
            "serial_number": "4a3f05", "subject": f"CN={demo_constants.ORIGIN_CN}", "profile": "cloudfront-origin",
            "not_after": "2027-02-19T08:00:00Z", "key_type": "ec-p256", "acm_certificate_arn": self.arn,
            "acm_region": "us-east-1", "origin_mtls_config": {"OriginMtlsConfig": {"ClientCertificateArn": self.arn}},
            "files": {"certificate": str(crt), "chain": str(chain)}, "written": [str(crt), str(chain)],
        }  # fmt: skip
        return subprocess.CompletedProcess([script, *args], 0, json.dumps(info), "")

    def _client(self, service: str, region: str | None = None) -> Any:
        from botocore.stub import Stubber

        assert service == "acm"
        self.regions.append(region)
        stubber = Stubber(self.acm)
        if self.acm_error:
            stubber.add_client_error("describe_certificate", self.acm_error, "no such certificate")
        else:
            stubber.add_response(
                "describe_certificate",
                {
                    "Certificate": {
                        "CertificateArn": self.arn, "DomainName": demo_constants.ORIGIN_CN, "Serial": "4a:3f:05",
                        "Status": "ISSUED", "Type": "IMPORTED", "KeyAlgorithm": self.key_algorithm,
                        "ExtendedKeyUsages": self.ekus, "NotAfter": dt.datetime(2027, 2, 19, tzinfo=dt.UTC),
                    }
                },
                {"CertificateArn": self.arn},
            )  # fmt: skip
            stubber.add_response(
                "get_certificate",
                {
                    "Certificate": self.acm_leaf.public_bytes(PEM).decode(),
                    "CertificateChain": b"".join(c.public_bytes(PEM) for c in self.acm_chain).decode(),
                },
                {"CertificateArn": self.arn},
            )
            stubber.add_response(
                "list_tags_for_certificate",
                {"Tags": [{"Key": "managed-by", "Value": "kmsca"}]},
                {"CertificateArn": self.arn},
            )
        stubber.activate()
        return self.acm


@pytest.fixture
def origin(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OriginSetup:
    return OriginSetup(pki, tmp_path, monkeypatch)


def test_origin_step_shows_the_certificate_in_acm_us_east_1(
    origin: OriginSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cloudfront_steps.step_origin_cert(origin.runner)
    assert result.startswith(f"{ACM_ARN}: ISSUED, EC P-256, EKU clientAuth")
    assert origin.regions == ["us-east-1"]
    out = capsys.readouterr().out
    assert '"ClientCertificateArn": "' + ACM_ARN + '"' in out
    assert "the stack runs in eu-west-1; the ARN's region is us-east-1" in out
    assert "ExtendedKeyUsages TLS_WEB_CLIENT_AUTHENTICATION" in out
    assert "X509v3 Extended Key Usage: TLS Web Client Authentication" in out
    assert "NIST CURVE: P-256" in out
    assert "CN=Unit Test CA  (issuing CA)" in out
    assert origin.runner.state.origin is not None
    assert origin.runner.state.origin.summary["acm_certificate_arn"] == ACM_ARN


def test_origin_step_marks_certificates_it_did_not_import(
    origin: OriginSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto's ACM appends an Amazon CA to the chain; it is shown as such, and the check still passes."""
    (origin.runner.work / "other").mkdir()
    other = Pki(origin.runner.work / "other")
    origin.acm_chain = [origin.pki.ca, other.ca]
    cloudfront_steps.step_origin_cert(origin.runner)
    assert "(appended by the ACM emulation, not imported by the CA)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: setattr(o, "acm_chain", [o.leaf, o.pki.ca]), "the chain in ACM contains the leaf"),
        (
            lambda o: setattr(o, "acm_chain", [_origin_leaf(o.pki, ec.generate_private_key(ec.SECP256R1()))]),
            "does not start with the issuing and the root CA",
        ),
        (lambda o: setattr(o, "key_algorithm", "RSA_2048"), "key algorithm RSA_2048, not EC P-256"),
        (lambda o: setattr(o, "ekus", []), "the EKU is not clientAuth"),
        (lambda o: setattr(o, "arn", ACM_ARN.replace("us-east-1", "eu-west-1")), "the ARN is in eu-west-1"),
        (
            lambda o: setattr(o, "acm_leaf", _origin_leaf(o.pki, ec.generate_private_key(ec.SECP256R1()))),
            "ACM holds another certificate than the one issued",
        ),
        (lambda o: setattr(o, "acm_error", "ResourceNotFoundException"), "the sandbox's ACM in us-east-1 cannot show"),
    ],
)
def test_origin_step_fails_on_what_acm_must_not_hold(
    origin: OriginSetup, change: Callable[[OriginSetup], None], message: str
) -> None:
    change(origin)
    with pytest.raises(demo.StepFailed, match=message):
        cloudfront_steps.step_origin_cert(origin.runner)


def test_origin_step_reports_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _demo(tmp_path)
    monkeypatch.setattr(
        demo.Demo,
        "cli",
        lambda self, *args: subprocess.CompletedProcess(args, 2, "", "error: CaNotReady: no ACM access\n"),
    )
    with pytest.raises(demo.StepFailed, match="exited with status 2: error: CaNotReady: no ACM access"):
        cloudfront_steps.step_origin_cert(runner)


def _not_found() -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "Key not found"}}, "GetKey")


class FakeKvs:
    """The KVS data-plane calls step_kvs makes; ``appears_after`` get_key calls before the key is there."""

    def __init__(self, items: dict[str, str], appears_after: int = 0) -> None:
        self.items, self.appears_after, self.gets = items, appears_after, 0
        self.pages: list[dict[str, Any]] = []

    def get_key(self, KvsARN: str, Key: str) -> dict[str, Any]:
        self.gets += 1
        if Key not in self.items or self.gets <= self.appears_after:
            raise _not_found()
        return {"Key": Key, "Value": self.items[Key], "ItemCount": len(self.items), "TotalSizeInBytes": 1}

    def describe_key_value_store(self, KvsARN: str) -> dict[str, Any]:
        return {"ETag": "KV1", "ItemCount": len(self.items), "TotalSizeInBytes": 1,
                "LastModified": dt.datetime.now(dt.UTC)}  # fmt: skip

    def list_keys(self, KvsARN: str, MaxResults: int, NextToken: str | None = None) -> dict[str, Any]:
        keys = sorted(self.items)
        start = int(NextToken or 0)
        page: dict[str, Any] = {"Items": [{"Key": k, "Value": self.items[k]} for k in keys[start : start + MaxResults]]}
        if start + MaxResults < len(keys):
            page["NextToken"] = str(start + MaxResults)
        self.pages.append(page)
        return page


KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/ff3c97df-7662-46da-b678-6296b183b6c8"


def _kvs_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kvs: FakeKvs) -> demo.Demo:
    runner = _demo(tmp_path)
    runner.sandbox.state = {"region": "eu-west-1", "outputs": {"RevokedSerialsStoreArn": KVS_ARN}}
    runner.state.revocation = _revocation(revoked_at="2026-11-21T08:00:00Z", recorded_wall=time.time())
    runner.state.client = demo.Issued("0102030405")
    monkeypatch.setattr(demo.Demo, "kvs_client", lambda self: kvs)
    monkeypatch.setattr(cloudfront_steps, "KVS_POLL_SECONDS", 0.01)
    return runner


def test_kvs_step_waits_for_the_sync_and_exports_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kvs = FakeKvs({"0a0b0c": "2026-11-21T08:00:00Z keyCompromise", "0d": "2026-11-20T08:00:00Z superseded"}, 3)
    runner = _kvs_demo(tmp_path, monkeypatch, kvs)
    result = cloudfront_steps.step_kvs(runner)
    assert result.startswith("0a0b0c -> '2026-11-21T08:00:00Z keyCompromise' (found after ")
    out = capsys.readouterr().out
    assert "(4 polls)" in out
    assert "get_key(0102030405) (the good client certificate): ResourceNotFoundException, not revoked" in out
    assert runner.state.kvs_export is not None
    assert json.loads(runner.state.kvs_export.read_text()) == {
        "data": [
            {"key": "0a0b0c", "value": "2026-11-21T08:00:00Z keyCompromise"},
            {"key": "0d", "value": "2026-11-20T08:00:00Z superseded"},
        ]
    }


def test_kvs_items_follows_pages() -> None:
    kvs = FakeKvs({f"{i:02x}": "v" for i in range(120)})
    assert len(cloudfront_steps.kvs_items(kvs, KVS_ARN)) == 120
    assert [len(p["Items"]) for p in kvs.pages] == [50, 50, 20]


def test_kvs_step_times_out_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _kvs_demo(tmp_path, monkeypatch, FakeKvs({}))
    monkeypatch.setattr(cloudfront_steps, "KVS_WAIT_SECONDS", 0.2)
    with pytest.raises(demo.StepFailed, match=r"0a0b0c is not in the KeyValueStore after 0.2 s .*SyncKvsFunction"):
        cloudfront_steps.step_kvs(runner)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"0a0b0c": "2026-11-21T08:00:00Z keyCompromise", "0102030405": "x"}, "the good certificate's serial is in"),
        ({"0a0b0c": "2026-11-21T08:00:00Z superseded"}, "expected '2026-11-21T08:00:00Z keyCompromise'"),
    ],
)
def test_kvs_step_checks_what_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, items: dict[str, str], message: str
) -> None:
    with pytest.raises(demo.StepFailed, match=message):
        cloudfront_steps.step_kvs(_kvs_demo(tmp_path, monkeypatch, FakeKvs(items)))


def test_kvs_step_without_a_store_is_a_clear_failure(tmp_path: Path) -> None:
    runner = _demo(tmp_path)
    runner.sandbox.state = {"region": "eu-west-1", "outputs": {}}
    with pytest.raises(demo.StepFailed, match="no RevokedSerialsStoreArn output"):
        cloudfront_steps.step_kvs(runner)


def test_kvs_client_without_awscrt_is_a_clear_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "awscrt" else real(name))
    with pytest.raises(demo.StepFailed, match=r"SigV4A, which needs awscrt"):
        _demo(tmp_path).kvs_client()


def _connection_demo(pki: Pki, tmp_path: Path, items: dict[str, str]) -> demo.Demo:
    runner = _demo(tmp_path)
    runner.state.revoked = demo.Issued("0a0b0c", files={"certificate": pki.revoked[0]})
    runner.state.client = demo.Issued("0102030405", files={"certificate": pki.client[0]})
    export = tmp_path / "kvs-items.json"
    export.write_text(json.dumps({"data": [{"key": k, "value": v} for k, v in items.items()]}))
    runner.state.kvs_export = export
    return runner


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


@needs_node
def test_connection_function_denies_the_revoked_and_allows_the_good(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = _connection_demo(pki, tmp_path, {"0a0b0c": "2026-11-21T08:00:00Z keyCompromise"})
    runner.sandbox.state = {
        "connection_functions": {
            "RevocationCheckFunction": {
                "name": "kmsca-dev-revocation-check",
                "runtime": "cloudfront-js-2.0",
                "stage": "LIVE",
                "code": (demo_constants.CONNECTION_DIR / "connection.js").read_text(),
            }
        }
    }
    assert cloudfront_steps.step_connection_function(runner).startswith("revoked certificate denied")
    out = capsys.readouterr().out
    assert "serialNumber 0a:0b:0c" in out  # the pki's revoked serial, as CloudFront renders it
    assert "serialNumber 0A0B0C" in out  # as openssl x509 -serial prints it
    assert 'logCustomData: {"reason":"revoked","serial":"0a0b0c","decision":"deny"}' in out
    assert "serialNumber 01:02:03:04:05" in out
    assert "decision allow (want allow)" in out
    assert "runs this same code" in out


@needs_node
def test_connection_function_with_an_empty_store_lets_the_revoked_in(pki: Pki, tmp_path: Path) -> None:
    """The decision comes from the store's content: without the key, the revoked certificate is allowed."""
    runner = _connection_demo(pki, tmp_path, {})
    with pytest.raises(demo.StepFailed, match="unexpected decision or log for: revoked certificate"):
        cloudfront_steps.step_connection_function(runner)


@needs_node
def test_connection_function_code_must_be_the_deployed_code(pki: Pki, tmp_path: Path) -> None:
    runner = _connection_demo(pki, tmp_path, {"0a0b0c": "v"})
    runner.sandbox.state = {"connection_functions": {"RevocationCheckFunction": {"code": "// stale copy\n"}}}
    with pytest.raises(demo.StepFailed, match=r"embed-connection-function\.py"):
        cloudfront_steps.step_connection_function(runner)


def test_missing_node_is_a_clear_failure(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, **_: None)
    with pytest.raises(demo.StepFailed, match=r"Node\.js is not installed"):
        cloudfront_steps.step_connection_function(_connection_demo(pki, tmp_path, {}))


def test_the_cloudfront_steps_then_the_two_account_steps_come_last_and_need_their_inputs() -> None:
    names = [s.name for s in demo.STEPS]
    assert names[-8:] == [
        "origin_cert", "kvs", "connection_function",
        "edge_target", "issuance_policy", "workload_caller", "workload_origin", "workload_revoke",
    ]  # fmt: skip
    requires = {s.name: s.requires for s in demo.STEPS}
    assert "revoke" in requires["kvs"] and "client_cert" in requires["kvs"]
    assert requires["connection_function"] == ("kvs",)
    assert requires["workload_caller"] == ("issuance_policy",)
    assert set(requires["workload_origin"]) == {"edge_target", "issuance_policy"}
    assert set(requires["workload_revoke"]) == {"workload_caller", "edge_target", "client_cert"}


def test_the_sandbox_starts_with_a_workload_account_whose_edge_stack_and_callers_it_accepts(tmp_path: Path) -> None:
    command = demo.SandboxProcess(tmp_path, timeout=1).command(4566)
    assert command[command.index("--workload-account") + 1] == demo_constants.WORKLOAD_ACCOUNT == "222222222222"
    assert "--deploy-edge" in command
    assert command[command.index("--parameter-overrides") + 1] == "CallerAccountIds=222222222222"


def _grant(caller_arn: str) -> Any:
    from kmsca.caller_policy import Caller, grant_for
    from kmsca.policy_document import parse_document

    document = parse_document(json.dumps(accounts_steps.policy_document("123456789012")))
    return grant_for(document, Caller(caller_arn, caller_arn.split(":")[4]), "123456789012")


def _name(cn: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def test_the_demo_policy_keeps_the_ca_accounts_certificates() -> None:
    from kmsca.errors import NotAuthorized

    grant = _grant("arn:aws:iam::123456789012:user/kmsca-dev-operator-0a1b2c3d")
    assert grant.rule.name == accounts_steps.CA_RULE
    grant.check_issue("client", _name("demo-client", "KMS CA demo"),
                      [x509.UniformResourceIdentifier("spiffe://demo.example/client")], 30)  # fmt: skip
    grant.check_issue("client", _name("demo-client-2", "KMS CA demo"), [], 90)
    grant.check_issue("server", _name("localhost"),
                      [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], 90)  # fmt: skip
    for cn, target in (("origin.demo.example", None), ("origin.workload.example", "workload")):
        grant.check_issue("cloudfront-origin", _name(cn), [x509.DNSName(cn)], 90, target)
    with pytest.raises(NotAuthorized, match="edge target 'elsewhere'"):
        grant.check_issue("cloudfront-origin", _name("origin.demo.example"),
                          [x509.DNSName("origin.demo.example")], 90, "elsewhere")  # fmt: skip


def test_the_demo_policy_limits_the_workload_pipeline() -> None:
    from kmsca.errors import NotAuthorized

    grant = _grant("arn:aws:iam::222222222222:user/pipeline")
    assert grant.rule.name == accounts_steps.WORKLOAD_RULE
    grant.check_issue("client", _name("api.workload.example"), [], 30)
    refused = [
        ("client", _name("www.example.com"), [], 30),
        ("client", _name("api.workload.example"), [], 31),
        ("server", _name("api.workload.example"), [x509.DNSName("api.workload.example")], 30),
        ("client", _name("workload.example"), [], 30),
    ]
    for profile, subject, sans, days in refused:
        with pytest.raises(NotAuthorized, match="'workload-pipeline'"):
            grant.check_issue(profile, subject, sans, days)
    with pytest.raises(NotAuthorized, match=r"'\(none\)'"):
        _grant("arn:aws:iam::222222222222:user/someone-else")


def test_a_sandbox_without_the_workload_edge_stack_is_a_clear_failure(tmp_path: Path) -> None:
    d = _demo(tmp_path)
    d.sandbox.state = {"stacks": {}, "admins": {}}
    with pytest.raises(demo.StepFailed, match=r"no edge stack in 222222222222 .*--deploy-edge"):
        accounts_steps.step_edge_target(d)
    with pytest.raises(demo.StepFailed, match=r"no account 222222222222 \(start it with --workload-account"):
        d.admin_credentials("222222222222")


@pytest.mark.parametrize(
    ("stderr", "code"),
    [
        ("error: NotAuthorized: not authorized by issuance policy rule 'r': x (request id 1)\n", "NotAuthorized"),
        ("Traceback ...\nerror: EdgeRoleRefused: edge target 'w': refused\n", "EdgeRoleRefused"),
        ("something else\n", ""),
        ("", ""),
    ],
)
def test_error_code_of_a_cli(stderr: str, code: str) -> None:
    assert accounts_steps._error_code(stderr) == code
