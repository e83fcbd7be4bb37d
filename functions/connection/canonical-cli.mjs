// Reads a JSON array of serial-number strings on stdin and prints, as a JSON array, what
// connection.js's canonicalSerial() makes of each (null: refused). Used by
// tests/deploy/test_connection_function.py to compare with the CA's Python canonical form.
import { loadConnectionFunction } from './harness.mjs';

const chunks = [];
for await (const chunk of process.stdin) {
    chunks.push(chunk);
}
const inputs = JSON.parse(Buffer.concat(chunks).toString('utf8'));
if (!Array.isArray(inputs)) {
    throw new TypeError('expected a JSON array of strings on stdin');
}
const { canonicalSerial } = await loadConnectionFunction();
process.stdout.write(JSON.stringify(inputs.map((text) => canonicalSerial(text))) + '\n');
