/*
 * CloudFront connection function (runtime cloudfront-js-2.0) for viewer mTLS:
 * refuses client certificates that the CA has revoked.
 *
 * Contract with the CA (layers/ca/kmsca/serial.py and the KeyValueStore sync function):
 *   - The KeyValueStore associated with this function holds one key per revoked,
 *     unexpired certificate of the issuing CA.
 *   - Key: the canonical serial number: lowercase hex, no colons, no leading zero
 *     octets, padded with one "0" to an even number of digits
 *     (0x0a1b -> "0a1b", 0x8f01 -> "8f01", never "008f01").
 *   - Value: "<revoked_at ISO 8601 Z> <reason>". Not read here: one exists() call keeps
 *     the function inside its ~5 ms budget; the CA's inventory has the details.
 *
 * CloudFront passes the leaf's serial as
 * connection.clientCertificate.certificates.leaf.serialNumber: lowercase hex with colons
 * in the documentation, uppercase in some samples, possibly with a leading 00 sign octet
 * or an odd number of digits. canonicalSerial() maps all of these to the key. (The AWS
 * revocation tutorial reads connection.clientCertInfo.serialNumber; that shape is
 * accepted too.)
 *
 * Decisions, exactly one connection.allow() or connection.deny() per connection:
 *   no client certificate        -> allow (verify mode refuses these before this function;
 *                                   in optional mode the operator chose to admit them)
 *   serial cannot be normalised  -> deny
 *   notAfter in the past         -> deny (expired), before any lookup: with the
 *                                   distribution's IgnoreCertificateExpiry, expired
 *                                   certificates reach this function, and the store
 *                                   drops expired serials, so a revoked expired
 *                                   certificate must be refused here
 *   notAfter present, unreadable -> deny; absent -> not checked (CloudFront checks
 *                                   expiry itself unless IgnoreCertificateExpiry)
 *   key present in the store     -> deny (revoked)
 *   KeyValueStore lookup fails   -> deny (fail closed)
 *   otherwise                    -> allow
 * Every deny and the certificate-less allow write one short JSON line with
 * connection.logCustomData (at most 800 bytes).
 */
import cf from 'cloudfront';

const kvs = cf.kvs();

// RFC 5280 4.1.2.2: a serial number has at most 20 octets.
const MAX_SERIAL_DIGITS = 40;

// Any rendering of a serial number -> canonical key, or null when it is not one.
function canonicalSerial(text) {
    if (typeof text !== 'string') {
        return null;
    }
    let hex = text.replace(/[:\s]/g, '').toLowerCase();
    if (!/^[0-9a-f]+$/.test(hex)) {
        return null;
    }
    hex = hex.replace(/^0+/, '');
    if (hex.length === 0 || hex.length > MAX_SERIAL_DIGITS) {
        return null;
    }
    return hex.length % 2 === 1 ? '0' + hex : hex;
}

// The leaf certificate CloudFront parsed, or null when the client presented none.
function leafCertificate(connection) {
    const client = connection.clientCertificate;
    if (client && client.certificates && client.certificates.leaf) {
        return client.certificates.leaf;
    }
    if (connection.clientCertInfo) {
        return connection.clientCertInfo;
    }
    return null;
}

// The leaf's notAfter in ms since the epoch; null when absent, NaN when unreadable.
// Read from leaf.validity.notAfter or leaf.notAfter: a date string, or a number of
// seconds (below 1e11) or milliseconds since the epoch.
function notAfterMillis(leaf) {
    let raw = leaf.notAfter;
    if (leaf.validity && leaf.validity.notAfter !== undefined) {
        raw = leaf.validity.notAfter;
    }
    if (raw === undefined || raw === null) {
        return null;
    }
    if (typeof raw === 'number') {
        return raw < 1e11 ? raw * 1000 : raw;
    }
    return typeof raw === 'string' ? Date.parse(raw) : NaN;
}

function logLine(connection, fields) {
    try {
        let line = JSON.stringify(fields);
        if (line.length > 250) {
            line = line.slice(0, 250); // 250 UTF-16 units stay under 800 UTF-8 bytes
        }
        connection.logCustomData(line);
    } catch (err) {
        // Logging must never prevent the decision.
    }
}

function describe(value, limit) {
    return String(value).slice(0, limit);
}

// Returns {allow: boolean, log: object or null}.
async function evaluate(connection) {
    const leaf = leafCertificate(connection);
    if (leaf === null) {
        return { allow: true, log: { reason: 'no client certificate' } };
    }
    const key = canonicalSerial(leaf.serialNumber);
    if (key === null) {
        return {
            allow: false,
            log: { reason: 'invalid serial number', serial: describe(leaf.serialNumber, 64) },
        };
    }
    const notAfter = notAfterMillis(leaf);
    if (notAfter !== null && !(notAfter > Date.now())) {
        const shown = leaf.validity && leaf.validity.notAfter !== undefined ? leaf.validity.notAfter : leaf.notAfter;
        return {
            allow: false,
            log: { reason: isNaN(notAfter) ? 'unreadable notAfter' : 'expired', serial: key, notAfter: describe(shown, 40) },
        };
    }
    let revoked;
    try {
        revoked = await kvs.exists(key);
    } catch (err) {
        return {
            allow: false,
            log: { reason: 'revocation lookup failed', serial: key, error: describe(err, 120) },
        };
    }
    if (revoked === false) {
        return { allow: true, log: null };
    }
    if (revoked === true) {
        return { allow: false, log: { reason: 'revoked', serial: key } };
    }
    return {
        allow: false,
        log: { reason: 'unexpected revocation lookup result', serial: key, result: describe(revoked, 40) },
    };
}

async function connectionHandler(connection) {
    let verdict;
    try {
        verdict = await evaluate(connection);
    } catch (err) {
        verdict = { allow: false, log: { reason: 'internal error', error: describe(err, 120) } };
    }
    if (verdict.log !== null) {
        verdict.log.decision = verdict.allow ? 'allow' : 'deny';
        logLine(connection, verdict.log);
    }
    if (verdict.allow) {
        connection.allow();
    } else {
        connection.deny();
    }
}
