"""RFC 5280 CRLReason names (section 5.3.1) for end-entity revocations: the one list the CA and the
operator CLIs share.

Pure Python, no dependencies, importable on Python 3.9+: the CLIs (package ``certcli``) import it
(tests/cli/test_cli_python39.py keeps it so). The names are those of ``cryptography.x509.ReasonFlags``
values, which ``kmsca.records.REASONS`` maps them to.
"""

from __future__ import annotations

#: RFC 5280 CRLReason names the CA accepts and stores for end-entity certificates; ``unspecified``
#: (the default of a revocation) first. ``removeFromCRL`` is not a revocation (RFC 5280 5.3.1).
REVOCATION_REASONS: tuple[str, ...] = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
)

#: Reasons RFC 5280 reserves for CA and attribute-authority certificates; refused for end entities.
CA_ONLY_REASONS: tuple[str, ...] = ("cACompromise", "aACompromise")
