"""CRL steps: both CRLs downloaded from the bucket, ``openssl verify -crl_check_all`` with them, and
the CRLs fetched from the distribution points named in the certificates."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from utils.demo.context import Demo
from utils.demo.crls import crl_number, entries
from utils.demo.output import StepFailed, detail
from utils.demo.state import Crls, require
from utils.demo.x509_text import CRL_EXCERPT, excerpt

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes


def step_crls(demo: Demo) -> str:
    """Download both CRLs (DER and PEM) and build crls.pem, the file relying parties load."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    published = require(demo.state.published, "the published CA")
    cas = {"issuing": published.issuing_pem, "root": published.root_pem}
    s3, bucket = demo.s3(), demo.sandbox.state["outputs"]["PublicBucketName"]
    target = demo.out_dir / "published"
    target.mkdir(parents=True, exist_ok=True)
    pems = []
    for name in ("issuing", "root"):
        ca = x509.load_pem_x509_certificate(cas[name].read_bytes())
        der_obj = s3.get_object(Bucket=bucket, Key=f"{name}.crl")
        der = der_obj["Body"].read()
        pem = s3.get_object(Bucket=bucket, Key=f"{name}.crl.pem")["Body"].read()
        (target / f"{name}.crl").write_bytes(der)
        (target / f"{name}.crl.pem").write_bytes(pem)
        crl = x509.load_der_x509_crl(der)
        if crl.public_bytes(Encoding.PEM) != pem:
            raise StepFailed(f"{name}.crl and {name}.crl.pem are not the same CRL")
        ca_key = cast("CertificateIssuerPublicKeyTypes", ca.public_key())  # a CA key: RSA, EC or ML-DSA
        if not crl.is_signature_valid(ca_key) or crl.issuer.public_bytes() != ca.subject.public_bytes():
            raise StepFailed(f"{name}.crl is not signed by (or not issued by) the {name} CA")
        detail(f"s3://{bucket}/{name}.crl  {len(der)} bytes  {der_obj.get('ContentType')}  number "
               f"{crl_number(crl)}, {entries(crl)}, signature valid, "
               f"next update {crl.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
        pems.append(pem)
    bundle = target / "crls.pem"
    bundle.write_bytes(b"".join(pems))
    demo.state.crls = Crls(target / "issuing.crl.pem", target / "root.crl.pem", bundle)
    text = demo.run(["openssl", "crl", "-inform", "DER", "-in", str(target / "issuing.crl"), "-noout", "-text"]).stdout
    for line in excerpt(text, CRL_EXCERPT):
        detail("  " + line)
    detail(f"wrote {demo.shown(str(bundle))}: issuing CRL + root CRL (PEM), for openssl, nginx and Python")
    return "issuing and root CRLs downloaded, signatures valid; crls.pem holds both"


def step_openssl_crl(demo: Demo) -> str:
    """openssl verify -crl_check_all with both CRLs: the good certificate passes, the revoked one fails."""
    published, crls = require(demo.state.published, "the published CA"), require(demo.state.crls, "the CRLs")
    base = ["openssl", "verify", "-crl_check_all", "-CAfile", str(published.root_pem), "-untrusted",
            str(published.issuing_pem)]  # fmt: skip
    good = str(require(demo.state.client, "the client certificate").certificate)
    revoked = str(require(demo.state.revoked, "the revoked certificate").certificate)

    result = demo.run([*base, "-CRLfile", str(crls.both_pem), good], check=False)
    detail(f"exit {result.returncode}: {(result.stdout + result.stderr).strip()}")
    if result.returncode != 0 or not result.stdout.strip().endswith(": OK"):
        raise StepFailed("the good certificate did not verify with the CRLs")

    result = demo.run([*base, "-CRLfile", str(crls.both_pem), revoked], check=False)
    output = (result.stdout + result.stderr).strip()
    for line in output.splitlines():
        detail(f"  {line}")
    if result.returncode == 0 or "certificate revoked" not in output:
        raise StepFailed("the revoked certificate was not reported as 'certificate revoked'")

    # Why relying parties need both CRLs: with -crl_check_all every CA of the chain needs one.
    result = demo.run([*base, "-CRLfile", str(crls.issuing_pem), good], check=False)
    output = (result.stdout + result.stderr).strip()
    detail("with the issuing CRL only, even the good certificate fails:")
    for line in output.splitlines():
        if "error" in line:
            detail(f"  {line}")
    if result.returncode == 0 or "unable to get certificate CRL" not in output:
        raise StepFailed("without the root CRL, openssl should refuse the chain ('unable to get certificate CRL')")
    return "good certificate OK; revoked one 'certificate revoked'; without the root CRL nothing verifies"


def step_crl_by_url(demo: Demo) -> str:
    """Fetch the CRLs from the CRL distribution points in the certificates (the hosted base URL), then
    openssl verify -crl_check_all with exactly what was fetched: good passes, revoked fails."""
    import urllib.request

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    published = require(demo.state.published, "the published CA")
    leaves = {"client": require(demo.state.client, "the client"), "revoked": require(demo.state.revoked, "the revoked")}
    fetched, pems = [], []
    for label, certificate in (("client", leaves["client"].certificate), ("issuing CA", published.issuing_pem)):
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = str(points[0].full_name[0].value)  # type: ignore[index]
        with urllib.request.urlopen(url, timeout=10) as response:
            der, cache_control = response.read(), response.headers.get("Cache-Control")
        crl = x509.load_der_x509_crl(der)
        detail(f"{label}: GET {demo.shown(url)} -> {len(der)} bytes, Cache-Control {cache_control}, "
               f"CRL number {crl_number(crl)}, {entries(crl)}")  # fmt: skip
        fetched.append(url)
        pems.append(crl.public_bytes(Encoding.PEM))
    crl_file = demo.out_dir / "published" / "crls-by-url.pem"
    crl_file.write_bytes(b"".join(pems))
    for kind, expected in (("client", 0), ("revoked", 2)):
        command = ["openssl", "verify", "-CAfile", str(published.root_pem), "-untrusted", str(published.issuing_pem),
                   "-crl_check_all", "-CRLfile", str(crl_file), str(leaves[kind].certificate)]  # fmt: skip
        result = demo.run(command, check=False)
        detail("  " + (result.stdout + result.stderr).strip().splitlines()[-1])
        if result.returncode != expected:
            raise StepFailed(f"openssl verify (fetched CRLs) of the {kind} certificate exited {result.returncode}")
    return f"CRLs fetched from {len(fetched)} distribution points in the certificates; openssl agrees"
