"""Values of the issue function's request fields that the CA and its clients (the operator CLIs,
package ``certcli``) share: profile names, the key types of a CloudFront origin certificate, the
form of an edge target's name, and the region CloudFront reads ACM certificates from.

Pure Python, no dependencies, importable on Python 3.9+ (tests/cli/test_cli_python39.py keeps it so).
"""

from __future__ import annotations

import re

#: ``profile`` values (``kmsca.profiles.PROFILES``): EKU clientAuth, EKU serverAuth, and a client
#: certificate whose key the CA generates and imports into ACM for CloudFront origin mTLS.
CLIENT = "client"
SERVER = "server"
CLOUDFRONT_ORIGIN = "cloudfront-origin"

#: ``key_type`` values of ``cloudfront-origin``: what ACM imports and CloudFront presents to origins
#: (RSA 2048 or ECDSA P-256, of the issuing CA's algorithm).
ORIGIN_KEY_TYPES: tuple[str, ...] = ("ec-p256", "rsa-2048")

#: ``target``: an edge target's name, 1-63 of a-z, 0-9 and '-', not starting with '-'. Ends with
#: \Z, not $: $ also matches before a trailing newline.
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")

#: The region whose ACM CloudFront reads certificates from, whatever region the CA stack is in.
ACM_REGION = "us-east-1"
