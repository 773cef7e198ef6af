// Hostile and broken input: truncated frames, trailing bytes, random and mutated bytes,
// lengths beyond limits or beyond the frame. Each must end in a DriftwoodError with a
// stable code, never a RangeError, and nothing may be allocated from an unchecked length.
import t from 'tap';
import fc from 'fast-check';
import { apis, decodeRequest, encodeRequest } from '../../src/kafka/protocol/apis.js';
import { decodeMessage } from '../../src/kafka/protocol/codec.js';
import { defaultDecodeLimits } from '../../src/kafka/protocol/wire.js';
import { DriftwoodError } from '../../storage/errors.js';
import { messageOf, versionsOf } from './arbitrary.js';

const seed = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
const params = { seed, numRuns: 25 };
t.comment(`fast-check seed ${seed} (replay: FC_SEED=${seed})`);

const STABLE = new Set(['INVALID_REQUEST', 'UNSUPPORTED_VERSION']);

function failsCleanly(decode: () => unknown): boolean {
  try {
    decode();
    return false;
  } catch (error) {
    if (error instanceof DriftwoodError && STABLE.has(error.code)) return true;
    throw error;
  }
}

function survives(decode: () => unknown): boolean {
  try {
    decode();
  } catch (error) {
    if (!(error instanceof DriftwoodError && STABLE.has(error.code))) throw error;
  }
  return true;
}

const requests = [...apis.values()].flatMap(({ request }) => versionsOf(request).map((version) => ({ request, version })));

void t.test('every request, truncated anywhere, is a DriftwoodError', { timeout: 120_000 }, (t) => {
  for (const { request, version } of requests) {
    fc.assert(fc.property(messageOf(request, version), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (body, at) => {
      const bytes = encodeRequest({ apiKey: request.apiKey, apiVersion: version, correlationId: 1, clientId: 'c' }, body);
      return failsCleanly(() => decodeRequest(bytes.subarray(0, Math.floor(at * bytes.length))));
    }), params);
  }
  t.pass(`${requests.length} request versions`);
  t.end();
});

void t.test('every request with trailing bytes is a DriftwoodError', { timeout: 120_000 }, (t) => {
  for (const { request, version } of requests) {
    fc.assert(fc.property(messageOf(request, version), fc.uint8Array({ minLength: 1, maxLength: 8 }), (body, extra) => {
      const bytes = encodeRequest({ apiKey: request.apiKey, apiVersion: version, correlationId: 1, clientId: null }, body);
      return failsCleanly(() => decodeRequest(Buffer.concat([bytes, extra])));
    }), params);
  }
  t.pass(`${requests.length} request versions`);
  t.end();
});

void t.test('random bytes after a valid key and version, and mutated requests, never throw anything else', { timeout: 120_000 }, (t) => {
  for (const { request, version } of requests) {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
      const head = Buffer.alloc(4);
      head.writeInt16BE(request.apiKey, 0);
      head.writeInt16BE(version, 2);
      return survives(() => decodeRequest(Buffer.concat([head, garbage])));
    }), params);
    fc.assert(fc.property(messageOf(request, version), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (body, flips) => {
      const bytes = Buffer.from(encodeRequest({ apiKey: request.apiKey, apiVersion: version, correlationId: 1, clientId: 'c' }, body));
      for (const [at, byte] of flips) bytes[at % bytes.length] = byte;
      return survives(() => decodeRequest(bytes));
    }), params);
  }
  t.pass(`${requests.length} request versions`);
  t.end();
});

void t.test('wholly random frames never throw anything else', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => survives(() => decodeRequest(Buffer.from(bytes)))), { seed, numRuns: 2000 });
  t.pass('2000 frames');
  t.end();
});

void t.test('lengths are checked against the frame and the limits before allocating', (t) => {
  const { request: metadata } = apis.get(3)!;
  // Metadata v1: a topic array claiming 2^31-1 items in a 4-byte body
  t.throws(() => decodeMessage(metadata, 1, Buffer.from('7fffffff', 'hex')), { code: 'INVALID_REQUEST' });
  // ... and -2, which is neither a length nor the null marker
  t.throws(() => decodeMessage(metadata, 1, Buffer.from('fffffffe', 'hex')), { code: 'INVALID_REQUEST', message: /negative length/ });
  // v0 has no null array: -1 is refused
  t.throws(() => decodeMessage(metadata, 0, Buffer.from('ffffffff', 'hex')), { code: 'INVALID_REQUEST', message: /not nullable/ });
  // a string longer than the frame
  t.throws(() => decodeMessage(metadata, 1, Buffer.from('00000001 0010 61'.replace(/ /g, ''), 'hex')), { code: 'INVALID_REQUEST', message: /topics.name/ });
  // limits, when the bytes are there
  const tight = { ...defaultDecodeLimits, arrayItemsMax: 2, stringBytesMax: 3 };
  t.throws(() => decodeMessage(metadata, 1, Buffer.from('00000003 0001 61 0001 62 0001 63'.replace(/ /g, ''), 'hex'), tight), { code: 'INVALID_REQUEST', message: /limit 2/ });
  t.throws(() => decodeMessage(metadata, 1, Buffer.from('00000001 0004 61626364'.replace(/ /g, ''), 'hex'), tight), { code: 'INVALID_REQUEST', message: /limit 3/ });
  t.end();
});

void t.test('flexible encodings: overlong varints, huge compact lengths, bad tagged sections', (t) => {
  const { request: apiVersions } = apis.get(18)!;
  // a compact string length as a 6-byte varint
  t.throws(() => decodeMessage(apiVersions, 3, Buffer.from('808080808001', 'hex')), { code: 'INVALID_REQUEST', message: /varint/ });
  // a compact length of 2^32-2 bytes in a tiny frame
  t.throws(() => decodeMessage(apiVersions, 3, Buffer.from('ffffffff0f', 'hex')), { code: 'INVALID_REQUEST' });
  // two empty strings, then a tagged section that claims 200 entries (over taggedFieldsMax)
  t.throws(() => decodeMessage(apiVersions, 3, Buffer.from('0101c801', 'hex')), { code: 'INVALID_REQUEST', message: /tagged fields/ });
  // a tagged field whose size runs past the end
  t.throws(() => decodeMessage(apiVersions, 3, Buffer.from('0101 01 05 10 00'.replace(/ /g, ''), 'hex')), { code: 'INVALID_REQUEST', message: /tagged field 5/ });
  // an unknown tag is skipped
  t.same(decodeMessage(apiVersions, 3, Buffer.from('0101 01 05 02 abcd'.replace(/ /g, ''), 'hex')), { clientSoftwareName: '', clientSoftwareVersion: '' });
  // tags out of order
  t.throws(() => decodeMessage(apiVersions, 3, Buffer.from('0101 02 05 00 04 00'.replace(/ /g, ''), 'hex')), { code: 'INVALID_REQUEST', message: /ascend/ });
  // a known tag whose body is longer than its value: ApiVersions v3 response tag 1 is an int64
  const { response } = apis.get(18)!;
  t.throws(() => decodeMessage(response, 3, Buffer.from('0000 01 00000000 01 01 09 000000000000000100'.replace(/ /g, ''), 'hex')), { code: 'INVALID_REQUEST', message: /left over/ });
  t.same(decodeMessage(response, 3, Buffer.from('0000 01 00000000 01 01 08 0000000000000001'.replace(/ /g, ''), 'hex')).finalizedFeaturesEpoch, 1n);
  t.end();
});

void t.test('a boolean byte other than 0 or 1 is refused', (t) => {
  const { request } = apis.get(32)!;
  // DescribeConfigs v1: no resources, includeSynonyms = 2
  t.throws(() => decodeMessage(request, 1, Buffer.from('00000000 02'.replace(/ /g, ''), 'hex')), { code: 'INVALID_REQUEST', message: /boolean/ });
  t.end();
});

void t.test('an unknown API key is UNSUPPORTED_VERSION with the correlation id to answer', (t) => {
  t.throws(() => decodeRequest(Buffer.from('03e7 0000 0000002a ffff'.replace(/ /g, ''), 'hex')), { code: 'UNSUPPORTED_VERSION', hints: { apiKey: 999, correlationId: 42 } });
  t.throws(() => decodeRequest(Buffer.from('0000 0002 0000002a ffff'.replace(/ /g, ''), 'hex')), { code: 'UNSUPPORTED_VERSION', hints: { apiKey: 0, apiVersion: 2 } }, 'Produce v2 (old message format) is not spoken');
  t.throws(() => decodeRequest(Buffer.from('0000', 'hex')), { code: 'INVALID_REQUEST' }, 'a frame shorter than the fixed header');
  t.end();
});
