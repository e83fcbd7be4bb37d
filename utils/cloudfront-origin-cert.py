#!/usr/bin/env python3
"""Issue the client certificate CloudFront presents to an origin (origin mutual TLS).

The issue function generates the key pair (ECDSA P-256, or RSA 2048 with ``--key-type
rsa-2048``), issues a certificate with EKU clientAuth and imports certificate, key and chain
into ACM in us-east-1, the region CloudFront reads origin certificates from. The key is never
returned or written: there is no key file. The tool prints the ACM ARN and the
``OriginMtlsConfig`` to paste into the origin's ``CustomOriginConfig``; ``--out-dir`` also
writes the certificate and the chain (PEM). Run with ``--help`` for the options; the shared
code is in ``utils/certcli/``.

Example::

    python utils/cloudfront-origin-cert.py origin.example.com --san dns:origin.example.com --stack-name kmsca-dev
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python utils/cloudfront-origin-cert.py origin.example.com  # sandbox

A shim of the installed console script ``kmsca-cloudfront-origin-cert`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import cloudfront_origin_cert
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(cloudfront_origin_cert(sys.argv[1:], prog="cloudfront-origin-cert.py"))
