"""Steps on the published CA: the certificates and bundle bootstrap put in the public bucket, and
``openssl verify`` of the issued leaves against them."""

from __future__ import annotations

from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import PublishedCa, require
from utils.demo.x509_text import describe_key, excerpt


def step_published_ca(demo: Demo) -> str:
    """Download the CA certificates and the bundle that bootstrap published to the public bucket."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    bucket = demo.sandbox.state["outputs"]["PublicBucketName"]
    s3 = demo.s3()
    target = demo.out_dir / "published"
    target.mkdir(parents=True, exist_ok=True)
    bodies: dict[str, bytes] = {}
    for key in ("root.crt", "root.pem", "issuing.crt", "issuing.pem", "ca-bundle.pem"):
        obj = s3.get_object(Bucket=bucket, Key=key)
        bodies[key] = obj["Body"].read()
        (target / key).write_bytes(bodies[key])
        detail(f"s3://{bucket}/{key}  {len(bodies[key])} bytes  {obj.get('ContentType')}")
    demo.state.published = PublishedCa(target / "root.pem", target / "issuing.pem", target / "ca-bundle.pem")
    for name in ("root", "issuing"):
        der = x509.load_der_x509_certificate(bodies[f"{name}.crt"])
        if der.public_bytes(Encoding.PEM) != bodies[f"{name}.pem"]:
            raise StepFailed(f"{name}.crt and {name}.pem are not the same certificate")
    if bodies["ca-bundle.pem"] != bodies["root.pem"] + bodies["issuing.pem"]:
        raise StepFailed("ca-bundle.pem is not root.pem followed by issuing.pem")
    if b"\n\n" in bodies["ca-bundle.pem"]:
        raise StepFailed("ca-bundle.pem has blank lines (CloudFront trust stores refuse them)")
    issued = {"client": demo.state.client, "server": demo.state.server}
    for kind, certificate in issued.items():
        if require(certificate, f"the {kind} certificate").ca_bundle.read_bytes() != bodies["ca-bundle.pem"]:
            raise StepFailed(f"the ca-bundle.pem written by the {kind} CLI is not the published bundle")
    for name in ("root", "issuing"):
        cert = x509.load_pem_x509_certificate(bodies[f"{name}.pem"])
        detail(f"{name:<8}{cert.subject.rfc4514_string()}: {describe_key(cert)}")
    return "root, issuing and ca-bundle.pem agree; the CLI wrote the published bundle"


def step_openssl_verify(demo: Demo) -> str:
    """openssl verify against root + issuing and against the bundle; show the EKU."""
    published = require(demo.state.published, "the published CA")
    client, server = require(demo.state.client, "the client"), require(demo.state.server, "the server")
    root, issuing, bundle = published.root_pem, published.issuing_pem, client.ca_bundle
    checks = (
        ("client", client, "sslclient", "TLS Web Client Authentication"),
        ("server", server, "sslserver", "TLS Web Server Authentication"),
    )
    for kind, issued, purpose, eku in checks:
        leaf = str(issued.certificate)
        for trust in (["-CAfile", str(root), "-untrusted", str(issuing)], ["-CAfile", str(bundle)]):
            result = demo.run(["openssl", "verify", *trust, "-purpose", purpose, "-x509_strict", leaf])
            if not result.stdout.strip().endswith(": OK"):
                raise StepFailed(f"openssl verify said: {result.stdout.strip()} {result.stderr.strip()}")
            detail(result.stdout.strip())
        text = demo.run(["openssl", "x509", "-in", leaf, "-noout", "-text"]).stdout
        for line in excerpt(text):
            detail("  " + line)
        if eku not in text:
            raise StepFailed(f"the {kind} certificate does not show '{eku}'")
    return "both leaves verify (purpose sslclient / sslserver); EKU clientAuth / serverAuth"
