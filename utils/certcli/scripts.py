"""The operator tools' entry points: the console scripts ``pyproject.toml`` installs
(``kmsca-client-cert`` ...) and the ``utils/<tool>.py`` shims of a checkout call these.

Each takes the arguments (default ``sys.argv[1:]``) and the program name shown in usage and help
(default: the name it was started as, e.g. ``kmsca-client-cert``; the shims pass
``client-cert.py``), and returns the tool's exit status; flags, output and exit statuses are the
tool's own (see :func:`certcli.issue.main` and the others).
"""

from __future__ import annotations

from collections.abc import Sequence

from .contract import CLIENT, SERVER
from .inventory import certs_main
from .issue import main
from .origin import origin_main
from .policy import policy_main
from .revoke import revoke_main
from .targets import targets_main


def client_cert(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-client-cert`` / ``utils/client-cert.py``: a TLS client certificate (key made locally)."""
    return main(argv, profile=CLIENT, prog=prog)


def server_cert(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-server-cert`` / ``utils/server-cert.py``: a TLS server certificate (key made locally)."""
    return main(argv, profile=SERVER, prog=prog)


def revoke_cert(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-revoke-cert`` / ``utils/revoke-cert.py``: revoke a certificate."""
    return revoke_main(argv, prog=prog)


def cloudfront_origin_cert(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-cloudfront-origin-cert`` / ``utils/cloudfront-origin-cert.py``: a CloudFront origin
    certificate imported into ACM us-east-1."""
    return origin_main(argv, prog=prog)


def certs(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-certs`` / ``utils/certs.py``: list, show and renew certificates."""
    return certs_main(argv, prog=prog)


def edge_targets(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-edge-targets`` / ``utils/edge-targets.py``: register, list, deregister edge targets."""
    return targets_main(argv, prog=prog)


def issuance_policy(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``kmsca-issuance-policy`` / ``utils/issuance-policy.py``: get, check, put the issuance policy
    (Python 3.11+)."""
    return policy_main(argv, prog=prog)
