// Loads connection.js under Node.js for tests and tools.
//
// CloudFront's `cloudfront` module does not exist in Node.js, so loadConnectionFunction()
// writes a stand-in into a temporary node_modules/cloudfront, copies connection.js next to
// it as an ES module with `export { connectionHandler, canonicalSerial };` appended (the
// CloudFront runtime needs no exports), imports both, and removes the directory again.
//
// The stand-in's kvs() handle answers exists(key) and get(key) from `kvsState.store`
// (a Map the caller fills); setting `kvsState.failure` to an Error makes every call reject
// with it. `kvsState.calls` records the calls, `kvsState.kvsIds` the ids passed to kvs().
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'connection.js');

const STAND_IN = `
export const state = { store: new Map(), failure: null, calls: [], kvsIds: [] };

function record(op, key) {
    state.calls.push({ op, key });
    if (state.failure) {
        throw state.failure;
    }
}

const handle = {
    async exists(key) {
        record('exists', key);
        return state.store.has(key);
    },
    async get(key) {
        record('get', key);
        if (!state.store.has(key)) {
            throw new Error('Key not found');
        }
        return state.store.get(key);
    },
};

export default {
    kvs(...args) {
        state.kvsIds.push(args.length ? args[0] : undefined);
        return handle;
    },
};
`;

export async function loadConnectionFunction() {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'cf-connection-')));
    try {
        const pkg = join(dir, 'node_modules', 'cloudfront');
        mkdirSync(pkg, { recursive: true });
        writeFileSync(
            join(pkg, 'package.json'),
            JSON.stringify({ name: 'cloudfront', version: '0.0.0', type: 'module', exports: './index.mjs' }),
        );
        writeFileSync(join(pkg, 'index.mjs'), STAND_IN);
        const module = join(dir, 'connection.mjs');
        writeFileSync(module, readFileSync(SOURCE, 'utf8') + '\nexport { connectionHandler, canonicalSerial };\n');
        const fn = await import(pathToFileURL(module).href);
        // Same URL as the one connection.mjs resolved 'cloudfront' to: the same instance.
        const cloudfront = await import(pathToFileURL(join(pkg, 'index.mjs')).href);
        return {
            connectionHandler: fn.connectionHandler,
            canonicalSerial: fn.canonicalSerial,
            kvsState: cloudfront.state,
        };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
