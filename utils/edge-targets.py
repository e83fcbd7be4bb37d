#!/usr/bin/env python3
"""Register, list and deregister the CA's edge targets (workload accounts whose KeyValueStore, ACM
us-east-1 and trust store the CA keeps up to date; see ``utils/certcli/targets.py``).

Example::

    KMSCA_EDGE_EXTERNAL_ID=... python utils/edge-targets.py register prod-web --account-id 222222222222 \\
        --role-arn arn:aws:iam::222222222222:role/kmsca-dev-edge-us-east-1 \\
        --kvs-arn arn:aws:cloudfront::222222222222:key-value-store/0a1b... --stack-name kmsca-dev
    python utils/edge-targets.py list --json
    python utils/edge-targets.py deregister prod-web
"""

from __future__ import annotations

import sys

from certcli.targets import targets_main

if __name__ == "__main__":
    sys.exit(targets_main(sys.argv[1:], prog="edge-targets.py"))
