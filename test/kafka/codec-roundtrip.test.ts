// Every described message at every described version: a value generated from the description
// encodes and decodes back to itself, with its header. fast-check prints the seed and the
// path of a failing case, and FC_SEED=<seed> replays it.
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { apis, decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/kafka/protocol/apis.js';
import { decodeMessage, encodeMessage } from '../../src/kafka/protocol/codec.js';
import { requestHeader } from '../../src/kafka/protocol/messages/header.js';
import { messageOf, versionsOf } from './arbitrary.js';

const seed = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
const params = { seed, numRuns: 40 };
t.comment(`fast-check seed ${seed} (replay: FC_SEED=${seed})`);

void t.test('every request round-trips with its header at every version', { timeout: 120_000 }, (t) => {
  for (const { request } of apis.values()) {
    for (const version of versionsOf(request)) {
      const header = fc.record({ correlationId: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), clientId: fc.option(fc.string({ maxLength: 10 }), { nil: null }) });
      fc.assert(fc.property(header, messageOf(request, version), (h, body) => {
        const bytes = encodeRequest({ apiKey: request.apiKey, apiVersion: version, ...h }, body);
        const decoded = decodeRequest(bytes);
        return isDeepStrictEqual(decoded.body, body) && isDeepStrictEqual(decoded.header, { apiKey: request.apiKey, apiVersion: version, ...h });
      }), params);
    }
    t.pass(`${request.name} ${request.validVersions}`);
  }
  t.end();
});

void t.test('every response round-trips with its header at every version', { timeout: 120_000 }, (t) => {
  for (const { response } of apis.values()) {
    for (const version of versionsOf(response)) {
      fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), messageOf(response, version), (correlationId, body) => {
        const decoded = decodeResponse(response.apiKey, version, encodeResponse(response.apiKey, version, correlationId, body));
        return decoded.correlationId === correlationId && isDeepStrictEqual(decoded.body, body);
      }), params);
    }
    t.pass(`${response.name} ${response.validVersions}`);
  }
  t.end();
});

void t.test('request headers v0-v2 round-trip alone', (t) => {
  for (const version of [0, 1, 2]) {
    fc.assert(fc.property(messageOf(requestHeader, version), (header) => isDeepStrictEqual(decodeMessage(requestHeader, version, encodeMessage(requestHeader, version, header)), header)), params);
  }
  t.pass('v0, v1, v2');
  t.end();
});

void t.test('a field missing from the value is encoded as its default', (t) => {
  const { request } = apis.get(11)!;
  const decoded = decodeMessage(request, 1, encodeMessage(request, 1, { groupId: 'g', sessionTimeoutMs: 10, memberId: '', protocolType: 'consumer', protocols: [] }));
  t.equal(decoded.rebalanceTimeoutMs, -1, 'JoinGroup rebalanceTimeoutMs defaults to -1');
  t.end();
});
