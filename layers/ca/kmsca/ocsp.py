"""OCSP (RFC 6960) with the RFC 5019 lightweight profile: requests in, signed responses out.

Pure functions, no AWS: :func:`request_from_http` turns an HTTP request (GET with the
url-encoded base64 DER in the path, or POST ``application/ocsp-request``) into a
:class:`CertificateQuery`; :func:`build_response` signs one ``BasicOCSPResponse`` with the
delegated responder key (:mod:`kmsca.responder`); :func:`error_response` is an unsigned
``OCSPResponse`` with an error status. Nothing here raises for bad input except
:class:`OcspRefusal`, which carries the RFC 6960 4.2.1 status to answer with.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .errors import KmscaError
from .serial import serial_to_hex

#: Largest request accepted, bytes. A one-certificate request (RFC 5019 2.1.1) is about 80-120
#: bytes, with a nonce and a signature a few hundred; anything far larger is refused unread.
MAX_REQUEST_BYTES = 4096
#: CertID hash algorithms answered (RFC 5019 2.1.1: SHA-1; RFC 6960 4.1.1 allows others).
SUPPORTED_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"

#: RFC 5280 CRLReason names (as stored) -> cryptography's flags.
REASONS = {flag.value: flag for flag in x509.ReasonFlags}


class OcspRefusal(KmscaError):
    """A request the responder answers with an error status (RFC 6960 4.2.1), never a 500.

    Attributes:
        status: ``malformedRequest``, ``unauthorized``, ``tryLater`` or ``internalError``.
        problem: why, for the log (never the request's bytes).
    """

    def __init__(self, status: ocsp.OCSPResponseStatus, problem: str) -> None:
        super().__init__(problem, status=status.name)
        self.status = status
        self.problem = problem


def _malformed(problem: str) -> OcspRefusal:
    return OcspRefusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, problem)


@dataclass(frozen=True)
class CertificateQuery:
    """The one CertID of a request (RFC 6960 4.1.1) and its nonce.

    Attributes:
        hash_name: ``sha1`` or ``sha256``.
        issuer_name_hash, issuer_key_hash: as sent.
        serial_number: the certificate's serial, canonical hex (lowercase, even length).
        nonce: the id-pkix-ocsp-nonce value (RFC 8954), or None.
    """

    hash_name: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: str
    nonce: bytes | None

    @property
    def algorithm(self) -> hashes.HashAlgorithm:
        return SUPPORTED_HASHES[self.hash_name]()


def request_from_http(method: str, path_tail: str, body: bytes) -> CertificateQuery:
    """Parse an HTTP OCSP request (RFC 6960 appendix A.1, RFC 5019 5).

    Args:
        method: ``GET`` or ``POST``.
        path_tail: for GET, the path after the responder's prefix: the url-encoded base64 DER.
        body: for POST, the DER request.

    Raises:
        OcspRefusal: ``malformedRequest`` for anything that is not one parseable request for one
            certificate with a supported CertID hash.
    """
    if method == "GET":
        der = _der_from_path(path_tail)
    elif method == "POST":
        der = body
    else:
        raise _malformed(f"method {method} is not GET or POST")
    return parse_request(der)


def _der_from_path(path_tail: str) -> bytes:
    text = unquote(path_tail.lstrip("/"))
    if not text or len(text) > MAX_REQUEST_BYTES * 4 // 3 + 4:
        raise _malformed("GET path is empty or too long")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _malformed("GET path is not base64") from None


def parse_request(der: bytes) -> CertificateQuery:
    """Parse a DER OCSPRequest holding exactly one certificate (RFC 5019 2.1.1).

    Raises:
        OcspRefusal: ``malformedRequest`` (not DER, truncated, several certificates, too large,
            or a CertID hash other than SHA-1 and SHA-256).
    """
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise _malformed(f"request of {len(der)} bytes (1-{MAX_REQUEST_BYTES})")
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        query_fields = (request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
        extensions = request.extensions
    except (ValueError, NotImplementedError, UnsupportedAlgorithm) as exc:
        raise _malformed(f"not a one-certificate OCSP request ({type(exc).__name__})") from None
    if algorithm.name not in SUPPORTED_HASHES:
        raise _malformed(f"CertID hash {algorithm.name} is not SHA-1 or SHA-256")
    name_hash, key_hash, serial = query_fields
    if serial <= 0 or serial.bit_length() > 160:
        raise _malformed("serial number is not positive or is longer than 20 octets")
    try:
        nonce: bytes | None = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        nonce = None
    return CertificateQuery(algorithm.name, name_hash, key_hash, serial_to_hex(serial), nonce)


def _tlv(der: bytes, offset: int) -> tuple[int, int]:
    """(start of content, end) of the DER TLV at ``offset`` (definite lengths only)."""
    length = der[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    return start, start + length


def subject_public_key_bits(certificate: x509.Certificate) -> bytes:
    """The value of the subjectPublicKey BIT STRING (without its unused-bits octet), RFC 5280 4.1."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    content, _ = _tlv(spki, 0)  # SubjectPublicKeyInfo SEQUENCE
    _, algorithm_end = _tlv(spki, content)  # AlgorithmIdentifier
    bits_start, bits_end = _tlv(spki, algorithm_end)  # BIT STRING
    return spki[bits_start + 1 : bits_end]


def issuer_hashes(certificate: x509.Certificate, hash_name: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) a request names for certificates issued by this CA
    (RFC 6960 4.1.1): the hash of its DER subject and of its subjectPublicKey BIT STRING value."""
    algorithm = SUPPORTED_HASHES[hash_name]
    name = hashes.Hash(algorithm())
    name.update(certificate.subject.public_bytes())
    key = hashes.Hash(algorithm())
    key.update(subject_public_key_bits(certificate))
    return name.finalize(), key.finalize()


@dataclass(frozen=True)
class CertificateStatus:
    """What the responder says about one certificate (RFC 6960 4.2.1 CertStatus).

    Attributes:
        status: good, revoked or unknown.
        revocation_time: for revoked, UTC.
        reason: for revoked, the RFC 5280 CRLReason name, or None when ``unspecified`` (omitted).
    """

    status: ocsp.OCSPCertStatus
    revocation_time: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Signer:
    """Who signs responses: the delegated responder (RFC 6960 4.2.2.2).

    Attributes:
        certificate: the responder certificate (included in ``certs``, ResponderID byKey).
        private_key: its private key, in memory only.
        algorithm: signature hash.
    """

    certificate: x509.Certificate
    private_key: Any
    algorithm: hashes.HashAlgorithm | None


def build_response(
    query: CertificateQuery,
    status: CertificateStatus,
    signer: Signer,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A successful, signed OCSPResponse (DER) for one certificate.

    The CertID echoes the request's hash algorithm and hashes; ResponderID is byKey (RFC 5019
    2.2.3); the responder certificate is included; the nonce is echoed when the request had one
    (RFC 8954). producedAt is the signing time. No KMS call when the signer's key is local.
    """
    reason = status.reason if status.reason and status.reason != "unspecified" else None
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=query.issuer_name_hash,
            issuer_key_hash=query.issuer_key_hash,
            serial_number=int(query.serial_number, 16),
            algorithm=query.algorithm,
            cert_status=status.status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=status.revocation_time,
            revocation_reason=REASONS[reason] if reason else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        .certificates([signer.certificate])
    )
    if query.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(query.nonce), critical=False)
    response = builder.sign(signer.private_key, signer.algorithm)
    return response.public_bytes(serialization.Encoding.DER)


def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned OCSPResponse carrying only an error status (RFC 6960 4.2.1)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
