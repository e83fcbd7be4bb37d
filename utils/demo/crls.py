"""CRLs as the demo reads them (RFC 5280 section 5): number, entries, reasons, and the published copy."""

from __future__ import annotations

from typing import Any

from utils.demo.context import Demo


def entries(crl: Any) -> str:
    """``"1 entry"``, ``"3 entries"``."""
    return f"{len(crl)} {'entry' if len(crl) == 1 else 'entries'}"


def crl_number(crl: Any) -> int:
    """The CRL number extension (RFC 5280 5.2.3) of a cryptography CRL."""
    from cryptography import x509

    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def listed(crl: Any, serial_hex: str) -> Any:
    """The CRL entry for ``serial_hex``, or None."""
    return crl.get_revoked_certificate_by_serial_number(int(serial_hex, 16))


def entry_reason(entry: Any) -> str:
    """The reasonCode of a CRL entry as its RFC 5280 name (``keyCompromise``); none means unspecified."""
    from cryptography import x509

    try:
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return "unspecified"
    return str(flag.value)  # cryptography's ReasonFlags values are the RFC 5280 names


def fetch_crl(demo: Demo, key: str) -> tuple[Any, bytes, dict[str, str]]:
    """Read ``key`` (a DER CRL) from the public bucket.

    Returns:
        ``(cryptography CRL, DER bytes, S3 user metadata)``.
    """
    from cryptography import x509

    obj = demo.s3().get_object(Bucket=demo.sandbox.state["outputs"]["PublicBucketName"], Key=key)
    der = obj["Body"].read()
    return x509.load_der_x509_crl(der), der, dict(obj.get("Metadata") or {})
