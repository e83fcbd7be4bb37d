// node --test functions/connection/
//
// Runs connection.js under Node.js with a stand-in for CloudFront's `cloudfront` module
// (see harness.mjs) and checks the decisions, the logs and the key normalisation.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { before, beforeEach, describe, test } from 'node:test';

import { SOURCE, loadConnectionFunction } from './harness.mjs';

const REVOKED_KEY = '4a3f05';
const REVOKED_VALUE = '2026-11-21T08:00:00Z keyCompromise';

let connectionHandler;
let canonicalSerial;
let kvsState;

before(async () => {
    ({ connectionHandler, canonicalSerial, kvsState } = await loadConnectionFunction());
});

beforeEach(() => {
    kvsState.store.clear();
    kvsState.store.set(REVOKED_KEY, REVOKED_VALUE);
    kvsState.store.set('8f01', '2026-11-21T08:00:00Z superseded');
    kvsState.store.set('0a1b', '2026-11-21T08:00:00Z cessationOfOperation');
    kvsState.failure = null;
    kvsState.calls.length = 0;
});

// A connection object as CloudFront passes it; records decisions and logs.
function fakeConnection(fields) {
    const seen = { decisions: [], logs: [] };
    const connection = {
        clientIp: '203.0.113.10',
        ...fields,
        allow() {
            seen.decisions.push('allow');
        },
        deny() {
            seen.decisions.push('deny');
        },
        logCustomData(text) {
            assert.equal(typeof text, 'string');
            assert.ok(Buffer.byteLength(text, 'utf8') <= 800, `log line over 800 bytes: ${text.length}`);
            seen.logs.push(text);
        },
    };
    return { connection, seen };
}

function withLeafSerial(serialNumber) {
    return fakeConnection({
        clientCertificate: {
            certificates: {
                leaf: { serialNumber, subject: 'CN=device-1', issuer: 'CN=Issuing CA' },
            },
        },
    });
}

async function run(fake) {
    await connectionHandler(fake.connection);
    assert.equal(fake.seen.decisions.length, 1, `allow/deny called ${fake.seen.decisions.length} times`);
    return { decision: fake.seen.decisions[0], logs: fake.seen.logs };
}

describe('connectionHandler', () => {
    test('revoked serial (documented lowercase colon form): deny, serial logged', async () => {
        const { decision, logs } = await run(withLeafSerial('4a:3f:05'));
        assert.equal(decision, 'deny');
        assert.equal(logs.length, 1);
        const entry = JSON.parse(logs[0]);
        assert.equal(entry.decision, 'deny');
        assert.equal(entry.reason, 'revoked');
        assert.equal(entry.serial, REVOKED_KEY);
        assert.deepEqual(kvsState.calls, [{ op: 'exists', key: REVOKED_KEY }]);
    });

    test('serial not in the store: allow, nothing logged', async () => {
        const { decision, logs } = await run(withLeafSerial('4a:3f:06'));
        assert.equal(decision, 'allow');
        assert.deepEqual(logs, []);
        assert.deepEqual(kvsState.calls, [{ op: 'exists', key: '4a3f06' }]);
    });

    const forms = [
        ['uppercase with colons', '4A:3F:05', REVOKED_KEY],
        ['uppercase without colons', '4A3F05', REVOKED_KEY],
        ['lowercase without colons', '4a3f05', REVOKED_KEY],
        ['leading 00 sign octet', '00:8F:01', '8f01'],
        ['leading 00 sign octet, no colons', '008f01', '8f01'],
        ['odd number of digits', 'A:1B', '0a1b'],
        ['odd number of digits, no colons', 'a1b', '0a1b'],
        ['spaces around and between', ' 4a 3f 05 ', REVOKED_KEY],
    ];
    for (const [name, serial, key] of forms) {
        test(`revoked serial, ${name} (${JSON.stringify(serial)}): deny`, async () => {
            const { decision, logs } = await run(withLeafSerial(serial));
            assert.equal(decision, 'deny');
            assert.equal(JSON.parse(logs[0]).serial, key);
            assert.deepEqual(kvsState.calls, [{ op: 'exists', key }]);
        });
    }

    test('certificate from the AWS revocation tutorial shape (clientCertInfo): checked too', async () => {
        const revoked = await run(fakeConnection({ clientCertInfo: { serialNumber: '4A:3F:05' } }));
        assert.equal(revoked.decision, 'deny');
        const good = await run(fakeConnection({ clientCertInfo: { serialNumber: '01:02' } }));
        assert.equal(good.decision, 'allow');
    });

    const certificateLess = [
        ['no clientCertificate', {}],
        ['clientCertificate null', { clientCertificate: null }],
        ['no certificates', { clientCertificate: {} }],
        ['no leaf', { clientCertificate: { certificates: {} } }],
    ];
    for (const [name, fields] of certificateLess) {
        test(`no client certificate (${name}): allow and log`, async () => {
            const { decision, logs } = await run(fakeConnection(fields));
            assert.equal(decision, 'allow');
            assert.equal(logs.length, 1);
            assert.match(logs[0], /no client certificate/);
            assert.deepEqual(kvsState.calls, [], 'no KVS lookup without a certificate');
        });
    }

    const garbage = [
        ['not hex', 'zz:11'],
        ['dashes', '4a-3f-05'],
        ['0x prefix', '0x4a3f05'],
        ['empty', ''],
        ['only colons', '::'],
        ['zero', '00'],
        ['zeros with colons', '00:00:00'],
        ['longer than 20 octets', 'ff'.repeat(21)],
        ['not a string', 12345],
        ['missing', undefined],
        ['null', null],
    ];
    for (const [name, serial] of garbage) {
        test(`unusable serial (${name}): deny and log, no lookup`, async () => {
            const { decision, logs } = await run(withLeafSerial(serial));
            assert.equal(decision, 'deny');
            assert.equal(logs.length, 1);
            const entry = JSON.parse(logs[0]);
            assert.equal(entry.decision, 'deny');
            assert.equal(entry.reason, 'invalid serial number');
            assert.deepEqual(kvsState.calls, []);
        });
    }

    test('a huge or non-ASCII serial keeps the log line under 800 bytes', async () => {
        for (const serial of ['z'.repeat(100000), '€'.repeat(5000), '"\\'.repeat(5000)]) {
            kvsState.calls.length = 0;
            const { decision, logs } = await run(withLeafSerial(serial));
            assert.equal(decision, 'deny');
            assert.equal(logs.length, 1);
        }
    });

    test('KVS lookup rejects: deny (fail closed) and log the error', async () => {
        kvsState.failure = new Error('KVS unavailable');
        const { decision, logs } = await run(withLeafSerial('01:02:03'));
        assert.equal(decision, 'deny');
        const entry = JSON.parse(logs[0]);
        assert.equal(entry.reason, 'revocation lookup failed');
        assert.equal(entry.serial, '010203');
        assert.match(entry.error, /KVS unavailable/);
    });

    test('KVS lookup with a huge error message: still one deny, short log', async () => {
        kvsState.failure = new Error('x'.repeat(50000));
        const { decision, logs } = await run(withLeafSerial('01:02:03'));
        assert.equal(decision, 'deny');
        assert.ok(logs[0].length <= 250);
    });

    test('KVS lookup returns something other than a boolean: deny', async () => {
        const original = kvsState.store.has;
        kvsState.store.has = () => undefined;
        try {
            const { decision, logs } = await run(withLeafSerial('01:02:03'));
            assert.equal(decision, 'deny');
            assert.match(logs[0], /unexpected revocation lookup result/);
        } finally {
            kvsState.store.has = original;
        }
    });

    test('logCustomData throwing does not stop the decision', async () => {
        const fake = withLeafSerial('4a:3f:05');
        fake.connection.logCustomData = () => {
            throw new Error('log quota');
        };
        const { decision } = await run(fake);
        assert.equal(decision, 'deny');
    });

    test('an unexpected error while reading the connection: deny once', async () => {
        const fake = fakeConnection({});
        Object.defineProperty(fake.connection, 'clientCertificate', {
            get() {
                throw new Error('boom');
            },
        });
        const { decision, logs } = await run(fake);
        assert.equal(decision, 'deny');
        assert.match(logs[0], /internal error/);
    });

    test('the store handle comes from cf.kvs() without an id (the associated store)', () => {
        assert.deepEqual(kvsState.kvsIds, [undefined]);
    });
});

describe('canonicalSerial (same rule as kmsca.serial.serial_to_hex)', () => {
    const cases = [
        ['4A:3F:05', '4a3f05'],
        ['4a:3f:05', '4a3f05'],
        ['4a3f05', '4a3f05'],
        ['A:1B', '0a1b'],
        ['a1b', '0a1b'],
        ['0a1b', '0a1b'],
        ['00:0a:1b', '0a1b'],
        ['00:8F:01', '8f01'],
        ['8f01', '8f01'],
        ['008f01', '8f01'],
        ['0008f01', '8f01'],
        ['1', '01'],
        ['01', '01'],
        ['00:01', '01'],
        ['FF', 'ff'],
        ['00:FF', 'ff'],
        ['f'.repeat(40), 'f'.repeat(40)],
        ['00' + 'f'.repeat(40), 'f'.repeat(40)],
        ['7' + 'f'.repeat(38), '07' + 'f'.repeat(38)],
        [' 0A3F05 ', '0a3f05'],
        ['4a 3f 05', '4a3f05'],
    ];
    for (const [input, expected] of cases) {
        test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
            assert.equal(canonicalSerial(input), expected);
        });
    }

    const refused = ['', ':', '0', '00', '00:00', 'xyz', '4a-3f', '0x4a3f05', 'g1', '1'.repeat(41), 'ff'.repeat(21)];
    for (const input of refused) {
        test(`${JSON.stringify(input)} is refused`, () => {
            assert.equal(canonicalSerial(input), null);
        });
    }

    test('non-strings are refused', () => {
        for (const input of [undefined, null, 0, 1, 0x4a3f05, {}, [], true]) {
            assert.equal(canonicalSerial(input), null);
        }
    });

    test('agrees with the Python rule for BigInts rendered every way', () => {
        const python = (n) => {
            const text = n.toString(16);
            return text.length % 2 ? '0' + text : text;
        };
        const colons = (hex) => hex.match(/../g).join(':');
        let n = 1n;
        for (let i = 0; i < 400; i += 1) {
            n = (n * 6364136223846793005n + 1442695040888963407n) % (1n << 159n) || 1n;
            const expected = python(n);
            assert.equal(canonicalSerial(colons(expected).toUpperCase()), expected);
            assert.equal(canonicalSerial(colons(expected)), expected);
            assert.equal(canonicalSerial('00:' + colons(expected)), expected);
            assert.equal(canonicalSerial(n.toString(16)), expected);
            assert.equal(canonicalSerial(n.toString(16).toUpperCase()), expected);
        }
    });
});

describe('expiry (IgnoreCertificateExpiry lets expired certificates reach the function)', () => {
    const DAY = 86400000;
    function withValidity(leafFields) {
        return fakeConnection({
            clientCertificate: { certificates: { leaf: { serialNumber: '12:34', subject: 'CN=d', ...leafFields } } },
        });
    }
    const expired = new Date(Date.now() - DAY).toISOString();
    const valid = new Date(Date.now() + DAY).toISOString();

    test('an expired certificate that is revoked (its serial already dropped from the store): deny, no lookup', async () => {
        // The reconcile removes expired serials, so the store no longer knows this one.
        const { decision, logs } = await run(withValidity({ serialNumber: '4a:3f:07', validity: { notAfter: expired } }));
        assert.equal(decision, 'deny');
        assert.equal(kvsState.calls.length, 0);
        assert.equal(JSON.parse(logs[0]).reason, 'expired');
    });

    test('an expired certificate whose serial is still in the store: deny', async () => {
        const { decision } = await run(withValidity({ serialNumber: '4a:3f:05', validity: { notAfter: expired } }));
        assert.equal(decision, 'deny');
    });

    for (const [name, fields] of [
        ['validity.notAfter ISO string', { validity: { notAfter: expired } }],
        ['notAfter ISO string', { notAfter: expired }],
        ['validity.notAfter openssl-style string', { validity: { notAfter: 'Mar 21 13:35:00 2023 GMT' } }],
        ['notAfter epoch seconds', { notAfter: Math.floor((Date.now() - DAY) / 1000) }],
        ['notAfter epoch milliseconds', { notAfter: Date.now() - DAY }],
    ]) {
        test(`expired (${name}): deny`, async () => {
            const { decision } = await run(withValidity(fields));
            assert.equal(decision, 'deny');
        });
    }

    test('an unexpired, unrevoked certificate: allow after the lookup', async () => {
        const { decision } = await run(withValidity({ validity: { notAfter: valid } }));
        assert.equal(decision, 'allow');
        assert.equal(kvsState.calls.length, 1);
    });

    test('no validity passed: not checked here (CloudFront checks expiry itself)', async () => {
        const { decision } = await run(withValidity({}));
        assert.equal(decision, 'allow');
    });

    for (const bad of ['not a date', true, {}]) {
        test(`an unreadable notAfter (${JSON.stringify(bad)}): deny (fail closed)`, async () => {
            const { decision, logs } = await run(withValidity({ validity: { notAfter: bad } }));
            assert.equal(decision, 'deny');
            assert.equal(JSON.parse(logs[0]).reason, 'unreadable notAfter');
        });
    }
});

describe('connection.js source', () => {
    const source = readFileSync(SOURCE, 'utf8');

    test('is under the 10 KB CloudFront limit', () => {
        const size = statSync(SOURCE).size;
        assert.ok(size < 10240, `connection.js is ${size} bytes`);
    });

    test('imports cloudfront, uses the associated store, defines the handler, exports nothing', () => {
        assert.match(source, /^import cf from 'cloudfront';$/m);
        assert.match(source, /^const kvs = cf\.kvs\(\);$/m);
        assert.match(source, /^async function connectionHandler\(connection\) \{$/m);
        assert.match(source, /^function canonicalSerial\(text\) \{$/m);
        assert.doesNotMatch(source, /^\s*export\b/m);
    });

    test('avoids syntax cloudfront-js-2.0 does not document (?. ?? catch without binding)', () => {
        const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
        assert.doesNotMatch(code, /\?\./);
        assert.doesNotMatch(code, /\?\?/);
        assert.doesNotMatch(code, /catch\s*\{/);
        assert.doesNotMatch(code, /\bclass\b/);
    });
});
