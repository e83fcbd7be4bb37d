"""Settings objects for tests that wire the CA themselves (through :mod:`kmsca.wiring`)."""

from __future__ import annotations

from kmsca.settings import IssueSettings, SigningSettings


def issue_settings(table_name: str, issuing_key_id: str) -> IssueSettings:
    """The issue settings of a test CA: lifetimes 365 (max) and 90 (default) days, no public base
    URL nor OCSP URL, PKCS#1 v1.5 SHA-256 for RSA."""
    return IssueSettings(
        table_name=table_name,
        issuing_key_id=issuing_key_id,
        max_lifetime_days=365,
        default_lifetime_days=90,
        public_base_url=None,
        signing=SigningSettings(),
    )
