#!/usr/bin/env python3
"""Issue a TLS client certificate (EKU clientAuth) from the KMS-backed private CA.

The key pair is generated on this machine; only a CSR is sent to the issue function, which
is invoked with your own AWS credentials. Run with ``--help`` for the options; the shared
code is in ``utils/certcli/``.

Example::

    python utils/client-cert.py device-42 --out-dir certs --stack-name kmsca-dev
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python utils/client-cert.py device-42  # local sandbox
"""

from __future__ import annotations

import sys

import certcli

if __name__ == "__main__":
    sys.exit(certcli.main(sys.argv[1:], profile=certcli.CLIENT, prog="client-cert.py"))
