"""Lifecycle events of certificates: what the table stream and the ACM rotation report become on
EventBridge (:mod:`kmsca.events` puts them).

- ``Certificate Issued``: the stream's ``INSERT`` of a ``CERT#`` item whose ``status`` is
  ``issued`` (every certificate the CA signs is recorded so, before anyone receives it; an origin
  certificate before its ACM import, so its first import's ARN is not known yet).
- ``Certificate Revoked``: the stream's ``MODIFY`` of a ``CERT#`` item from ``issued`` to
  ``revoked`` (revoke function, expiry sweep, rotation, a failed ACM import).
- ``Certificate Rotated`` / ``Certificate Rotation Failed``: one per ARN the rotation run rotated
  or failed to rotate (:class:`kmsca.rotation.RotationReport`).

A ``detail`` holds the inventory's public fields only (no certificate, no key, no free-text
error): see README, "Certificate events". A stream record that cannot be read is reported as an
:class:`~kmsca.records.UnreadableRecord` and skipped; it never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .events import (
    CERTIFICATE_ISSUED,
    CERTIFICATE_REVOKED,
    CERTIFICATE_ROTATED,
    CERTIFICATE_ROTATION_FAILED,
    Event,
)
from .records import REASONS, STATUS_ISSUED, STATUS_REVOKED, UnreadableRecord, iso, parse_iso, serial_of_key
from .table_keys import is_certificate_key


def _image(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    stream = record.get("dynamodb") if isinstance(record, Mapping) else None
    image = stream.get(name) if isinstance(stream, Mapping) else None
    return image if isinstance(image, dict) else {}


def _text(image: Mapping[str, Any], name: str) -> str | None:
    """A string attribute of a stream image (``{"S": ...}``), None when absent or of another type."""
    value = image.get(name)
    text = value.get("S") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else None


def _texts(image: Mapping[str, Any], name: str) -> list[str]:
    """A list-of-strings attribute (``{"L": [{"S": ...}]}``); ValueError for anything else."""
    value = image.get(name)
    if value is None:
        return []
    items = value.get("L") if isinstance(value, Mapping) else None
    if not isinstance(items, list):
        raise ValueError(f"{name} is not a list")
    texts = [item.get("S") if isinstance(item, Mapping) else None for item in items]
    if not all(isinstance(text, str) for text in texts):
        raise ValueError(f"{name} holds something other than strings")
    return [str(text) for text in texts]


def _time(image: Mapping[str, Any], name: str, required: bool = True) -> str | None:
    """A stored time re-rendered in the canonical form; ValueError when unreadable (or missing and required)."""
    text = _text(image, name)
    if text is None:
        if required:
            raise ValueError(f"{name} is missing or not a string")
        return None
    try:
        return iso(parse_iso(text))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def is_revocation(record: Mapping[str, Any]) -> bool:
    """True for a stream record of a certificate that is revoked now (``MODIFY``, new image
    ``revoked``): the records that need a CRL (the template's filter passes only issued -> revoked)."""
    return record.get("eventName") == "MODIFY" and _text(_image(record, "NewImage"), "status") == STATUS_REVOKED


def _certificate_detail(image: Mapping[str, Any]) -> dict[str, Any]:
    key = _text(image, "pk") or ""
    serial_number = serial_of_key(key)
    if serial_number is None or _text(image, "serial_number") != serial_number:
        raise ValueError("the key is not CERT#<canonical serial number> of the item's serial_number")
    for name in ("ca", "profile", "subject"):
        if _text(image, name) is None:
            raise ValueError(f"{name} is missing or not a string")
    return {
        "serial_number": serial_number,
        "ca": _text(image, "ca"),
        "profile": _text(image, "profile"),
        "subject": _text(image, "subject"),
        "sans": _texts(image, "sans"),
        "not_before": _time(image, "not_before"),
        "not_after": _time(image, "not_after"),
        "fingerprint_sha256": _text(image, "fingerprint_sha256"),
        "requested_by": _text(image, "requested_by"),
        "acm_certificate_arn": _text(image, "acm_certificate_arn"),
        "predecessor": _text(image, "predecessor"),
    }


def _revocation_detail(image: Mapping[str, Any]) -> dict[str, Any]:
    reason = _text(image, "revocation_reason")
    if reason not in REASONS:
        raise ValueError("revocation_reason is missing or not an RFC 5280 reason")
    return {
        "revoked_at": _time(image, "revoked_at"),
        "revocation_reason": reason,
        "invalidity_date": _time(image, "invalidity_date", required=False),
    }


def certificate_events(
    records: Iterable[Mapping[str, Any]], problems: list[UnreadableRecord] | None = None
) -> list[Event]:
    """``Certificate Issued`` and ``Certificate Revoked`` events of a stream batch, in stream order.

    Args:
        records: the ``Records`` of a Lambda DynamoDB-stream event (NEW_AND_OLD_IMAGES; images in
            the stream's JSON form, ``{"S": ...}``). Records of other items or transitions are ignored.
        problems: receives an :class:`UnreadableRecord` for each certificate record that cannot
            be read (skipped: no event).
    """
    sink = problems if problems is not None else []
    events = []
    for record in records:
        new = _image(record, "NewImage")
        key = _text(new, "pk") or ""
        if not is_certificate_key(key):
            continue
        status = _text(new, "status")
        name = record.get("eventName")
        was = _text(_image(record, "OldImage"), "status")
        if name == "INSERT" and status == STATUS_ISSUED:
            detail_type = CERTIFICATE_ISSUED
        elif name == "MODIFY" and status == STATUS_REVOKED and was == STATUS_ISSUED:
            detail_type = CERTIFICATE_REVOKED
        else:
            continue
        try:
            detail = _certificate_detail(new)
            if detail_type == CERTIFICATE_REVOKED:
                detail.update(_revocation_detail(new))
        except ValueError as exc:
            sink.append(UnreadableRecord(key[:80], f"no {detail_type} event: {exc}", serial_of_key(key)))
            continue
        events.append(Event(detail_type, detail))
    return events


def rotation_events(
    rotated: Iterable[Mapping[str, str]], failed: Iterable[Mapping[str, str]], missing: Iterable[Mapping[str, str]]
) -> list[Event]:
    """``Certificate Rotated`` per rotated ARN and ``Certificate Rotation Failed`` per failed or
    vanished one, from the lists of a :class:`kmsca.rotation.RotationReport`.

    The failure's free-text reason is left out (it may quote a request); ``error`` is the type name
    (``AcmCertificateMissing`` when ACM no longer has the ARN). An unfinished import repaired by a
    later run is notified (SNS) and alarmed, not an event.
    """
    events = [
        Event(
            CERTIFICATE_ROTATED,
            {
                "acm_certificate_arn": entry["acm_certificate_arn"],
                "serial_number": entry["new_serial_number"],
                "previous_serial_number": entry["serial_number"],
                "not_after": entry["not_after"],
            },
        )
        for entry in rotated
    ]
    for entry, error in [*((e, e["error"]) for e in failed), *((e, "AcmCertificateMissing") for e in missing)]:
        events.append(
            Event(
                CERTIFICATE_ROTATION_FAILED,
                {
                    "acm_certificate_arn": entry.get("acm_certificate_arn") or None,
                    "serial_number": entry["serial_number"],
                    "new_serial_number": entry.get("new_serial_number"),
                    "error": error,
                },
            )
        )
    return events
