"""The demo's machinery without the sandbox: the mutual-TLS server and clients, and how a
failed step is reported (later steps skipped, exit status 1, the sandbox's output shown)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from utils import demo

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
def server(pki: Pki) -> demo.MtlsServer:
    with demo.MtlsServer(*pki.server, pki.bundle) as running:
        yield running


def _demo(tmp_path: Path) -> demo.Demo:
    return demo.Demo(out_dir=tmp_path, work=tmp_path, sandbox=demo.Sandbox(tmp_path, timeout=1))


@pytest.mark.parametrize("tls12", [False, True])
def test_python_client_with_issued_certificate_is_accepted(pki: Pki, server: demo.MtlsServer, tls12: bool) -> None:
    client = demo.TlsClient("ours", "python", *pki.client, expect_accept=True, tls12=tls12)
    accepted, seen = demo.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert accepted, seen
    assert event.accepted
    assert event.subject == "CN=demo-client"
    assert event.serial_number == "0102030405"
    assert ("TLSv1.2" if tls12 else "TLSv1.3") in seen


@pytest.mark.parametrize("tls12", [False, True])
def test_python_client_without_certificate_is_refused(pki: Pki, server: demo.MtlsServer, tls12: bool) -> None:
    client = demo.TlsClient("none", "python", None, None, expect_accept=False, tls12=tls12)
    accepted, seen = demo.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert not accepted
    assert seen.startswith("refused: ")
    assert not event.accepted
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in event.detail


def test_certificate_from_another_ca_is_refused(pki: Pki, server: demo.MtlsServer, tmp_path: Path) -> None:
    chain, key = demo.foreign_client_cert(tmp_path / "other")
    assert key.stat().st_mode & 0o777 == 0o600
    accepted, _ = demo.python_client(demo.TlsClient("other", "python", chain, key, False), server.port, pki.bundle)
    event = server.next_event()
    assert not accepted and not event.accepted
    assert "CERTIFICATE_VERIFY_FAILED" in event.detail


def test_server_certificate_is_not_a_client_certificate(pki: Pki, server: demo.MtlsServer) -> None:
    client = demo.TlsClient("server as client", "python", *pki.server, expect_accept=False)
    accepted, _ = demo.python_client(client, server.port, pki.bundle)
    event = server.next_event()
    assert not accepted and not event.accepted
    assert "unsuitable certificate purpose" in event.detail


def test_openssl_client(pki: Pki, server: demo.MtlsServer, tmp_path: Path) -> None:
    runner = _demo(tmp_path)
    accepted, seen = demo.openssl_client(
        runner, demo.TlsClient("ours", "openssl", *pki.client, True), server.port, pki.bundle
    )
    assert accepted, seen
    assert "Verification: OK" in seen
    assert server.next_event().accepted

    accepted, seen = demo.openssl_client(
        runner, demo.TlsClient("none", "openssl", None, None, False), server.port, pki.bundle
    )
    assert not accepted
    assert "alert certificate required" in seen
    assert not server.next_event().accepted


def test_a_server_that_accepts_everything_would_be_caught(pki: Pki, tmp_path: Path) -> None:
    """The refusal check is real: against a server that does not ask for certificates, 'no certificate' is accepted."""
    lax = demo.MtlsServer(*pki.server, pki.bundle)
    lax.context.verify_mode = demo.ssl.CERT_NONE
    with lax:
        accepted, _ = demo.python_client(demo.TlsClient("none", "python", None, None, False), lax.port, pki.bundle)
    assert accepted


def test_failed_sandbox_is_reported_and_dependent_steps_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        demo.Sandbox, "command", lambda self, port: [sys.executable, "-c", "print('port in use'); raise SystemExit(3)"]
    )
    assert demo.main(["--out-dir", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "FAIL: the sandbox exited with status 3" in out
    assert "| port in use" in out
    assert "SKIP: needs sandbox" in out
    assert f"FAILED: 1/{len(demo.STEPS)} steps passed" in out


def test_sandbox_that_never_gets_ready_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        demo.Sandbox, "command", lambda self, port: [sys.executable, "-c", "import time; time.sleep(60)"]
    )
    sandbox = demo.Sandbox(tmp_path, timeout=0.5)
    with pytest.raises(demo.StepFailed, match="no state file after"):
        sandbox.start()
    assert sandbox.stop().startswith("stopped")
    assert sandbox.process is not None and sandbox.process.poll() is not None


def test_excerpt_joins_values_on_the_next_line() -> None:
    text = "        X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n        Other: x\n"
    assert demo.excerpt(text) == ["X509v3 Extended Key Usage: TLS Web Client Authentication"]


# --------------------------------------------------------------------------------------------
# Revocation steps' machinery


def test_crl_helpers(pki: Pki) -> None:
    crl = pki.crl([0x0A0B0C, 0x05], number=42)
    assert demo.crl_number(crl) == 42
    assert demo.entries(crl) == "2 entries"
    assert demo.entries(pki.crl([0x05])) == "1 entry"
    entry = demo.listed(crl, "0a0b0c")
    assert entry is not None and demo.entry_reason(entry) == "keyCompromise"
    assert demo.listed(crl, "0102030405") is None


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
    assert demo.http_summary(status, body) == shown


def test_python_server_with_crls_refuses_the_revoked_client(pki: Pki) -> None:
    with demo.MtlsServer(*pki.server, pki.bundle, crl_file=pki.crls) as server:
        accepted, seen = demo.python_client(
            demo.TlsClient("good", "python", *pki.client, True), server.port, pki.bundle
        )
        event = server.next_event()
        assert accepted and event.accepted, (seen, event)

        for tls12 in (False, True):
            client = demo.TlsClient("revoked", "python", *pki.revoked, False, tls12=tls12)
            accepted, seen = demo.python_client(client, server.port, pki.bundle)
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
    with demo.MtlsServer(*pki.server, pki.bundle, crl_file=crls) as server:
        accepted, _ = demo.python_client(demo.TlsClient("good", "python", *pki.client, True), server.port, pki.bundle)
        event = server.next_event()
    assert not accepted and not event.accepted
    assert "unable to get certificate CRL" in event.detail


@pytest.mark.skipif(demo.find_nginx() is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_with_crls(pki: Pki, tmp_path: Path) -> None:
    runner = _demo(tmp_path)
    nginx_binary = demo.find_nginx()
    assert nginx_binary is not None
    with demo.Nginx(
        nginx_binary, tmp_path / "nginx", fullchain=pki.server[0], key=pki.server[1], ca_bundle=pki.bundle,
        crls=pki.crls,
    ) as nginx:  # fmt: skip
        status, body = demo.python_https_get(nginx.port, pki.bundle, *pki.client)
        assert status == 200, body
        assert "serial 0102030405 verify SUCCESS" in body
        status, body = demo.openssl_https_get(runner, nginx.port, pki.bundle, *pki.client)
        assert status == 200, body
        status, body = demo.python_https_get(nginx.port, pki.bundle, *pki.revoked)
        assert status == 400
        assert "The SSL certificate error" in body
        status, body = demo.openssl_https_get(runner, nginx.port, pki.bundle, *pki.revoked)
        assert status == 400
        status, body = demo.python_https_get(nginx.port, pki.bundle, None, None)
        assert (status, demo.http_summary(status, body)) == (400, "400 No required SSL certificate was sent")
        time.sleep(0.1)
        assert any("certificate revoked" in line for line in nginx.log_lines("verify error"))
        process = nginx.process
    assert process is not None and process.poll() is not None  # stopped on exit


def test_nginx_that_cannot_start_is_reported(pki: Pki, tmp_path: Path) -> None:
    nginx_binary = demo.find_nginx() or sys.executable  # python exits at once on nginx's options too
    missing = tmp_path / "no-such-crls.pem"
    with (
        pytest.raises(demo.StepFailed, match="exited with status"),
        demo.Nginx(
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
    monkeypatch.setattr(demo, "find_nginx", lambda: None)
    with pytest.raises(demo.StepFailed, match=r"nginx is not installed.*apt-get install nginx-light"):
        demo.step_nginx(_demo(tmp_path))


def test_crl_wait_times_out_with_a_clear_message(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the stream-triggered publication the step fails after the wait, naming what it saw."""
    runner = _demo(tmp_path)
    crl = pki.crl([0x05], number=3)
    calls: list[str] = []

    def fetch(_: demo.Demo, key: str) -> tuple[x509.CertificateRevocationList, bytes, dict[str, str]]:
        calls.append(key)
        return crl, crl.public_bytes(serialization.Encoding.DER), {"crl-number": "3"}

    monkeypatch.setattr(demo, "fetch_crl", fetch)
    monkeypatch.setattr(demo, "CRL_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(demo, "CRL_POLL_SECONDS", 0.1)
    runner.revocation.update(serial="0a0b0c", crl_number_before=3, recorded=time.monotonic())
    with pytest.raises(
        demo.StepFailed, match=r"no published issuing.crl lists 0a0b0c 0.5 s after .*\(still number 3, 1 entry"
    ):
        demo.step_crl_published(runner)
    assert len(calls) >= 3
    assert set(calls) == {"issuing.crl"}


def test_crl_wait_checks_what_it_finds(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _demo(tmp_path)
    runner.files["issuing_pem"] = pki.bundle  # the test CA signs the CRL
    crl = pki.crl([0x0A0B0C], number=4)
    monkeypatch.setattr(
        demo, "fetch_crl", lambda _d, _k: (crl, crl.public_bytes(serialization.Encoding.DER), {"crl-number": "4"})
    )
    runner.revocation.update(serial="0a0b0c", crl_number_before=3, recorded=time.monotonic())
    assert "CRL number 3 -> 4 lists the revoked serial" in demo.step_crl_published(runner)

    runner.revocation.update(crl_number_before=4)  # a CRL number that did not increase is a failure
    with pytest.raises(demo.StepFailed, match="CRL number 4 is not above 4"):
        demo.step_crl_published(runner)

    (tmp_path / "forged").mkdir()
    forged = Pki(tmp_path / "forged").crl([0x0A0B0C], 9)  # same issuer name, another key
    monkeypatch.setattr(
        demo, "fetch_crl", lambda _d, _k: (forged, forged.public_bytes(serialization.Encoding.DER), {"crl-number": "9"})
    )
    with pytest.raises(demo.StepFailed, match="its signature does not verify under the issuing CA's key"):
        demo.step_crl_published(runner)


def test_crl_excerpt(pki: Pki, tmp_path: Path) -> None:
    der = tmp_path / "issuing.crl"
    der.write_bytes(pki.crl([0x0A0B0C], number=12).public_bytes(serialization.Encoding.DER))
    text = _demo(tmp_path).run(["openssl", "crl", "-inform", "DER", "-in", str(der), "-noout", "-text"]).stdout
    lines = demo.excerpt(text, demo.CRL_EXCERPT)
    assert "X509v3 CRL Number: 12" in lines
    assert "Serial Number: 0A0B0C" in lines
    assert "X509v3 CRL Reason Code: Key Compromise" in lines
