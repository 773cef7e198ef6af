// The Kafka listener's handlers against well-formed but arbitrary requests (issue 11: bad
// input never crashes the broker): fast-check draws an API the broker serves, a version and
// a body from the codec's own message description, steers some names, partitions and group
// ids at what exists (a topic 'fz', a group 'g1') so the handlers get past their first
// checks, bounds the waits, and sends it to a real node. Every request must be answered with
// a response that decodes (a handler that throws would close the connection instead), and
// the node must stay up. A failure prints fast-check's seed and path.
import fc from 'fast-check';
import t from 'tap';
import { served } from '../../src/kafka/handlers.js';
import { apis } from '../../src/kafka/protocol/apis.js';
import type { Value } from '../../src/kafka/protocol/spec.js';
import { freePort } from '../../src/node-free-port.js';
import { kafkaCall } from '../helpers/kafka.js';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';
import { messageOf } from './arbitrary.js';

const RUNS = Number(process.env.DRIFTWOOD_FUZZ_RUNS ?? 600);
const PRODUCE_KEY = 0;

/** A small seeded generator, so the steering below replays with fast-check's seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Points some fields at what exists and keeps every wait short (a join's, a fetch's, a create's). */
function steer(value: Value, key: string, random: () => number): Value {
  if (Array.isArray(value)) return value.map((item) => steer(item as Value, key, random));
  if (typeof value === 'number') {
    if (key === 'sessionTimeoutMs') return 1000 + (Math.abs(value) % 2000);
    if (key === 'acks' && value === 0) return 1; // acks=0 takes no answer; every other request must get one
    if (/timeout|wait/i.test(key)) return Math.abs(value) % 1500;
    if (/^(partition|partitionIndex|index)$/.test(key) && random() < 0.7) return Math.abs(value) % 3;
    return value;
  }
  if (typeof value === 'string') {
    if (/^(name|topic)$/.test(key) && random() < 0.5) return 'fz';
    if (/^(groupId|key)$/.test(key) && random() < 0.5) return 'g1';
    return value;
  }
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const steered: Record<string, Value> = {};
    for (const [field, inner] of Object.entries(value)) steered[field] = steer(inner, field, random);
    return steered;
  }
  return value;
}

void t.test('arbitrary well-formed requests to every served API are answered, and the broker stays up', { timeout: 300_000 }, async (t) => {
  const cluster = await localCluster(t, 'kafka-fuzz', 1);
  const kafkaPort = await freePort();
  cluster.start(1, 'start', ['--kafka-listen', `127.0.0.1:${kafkaPort}`]);
  const http = `http://127.0.0.1:${cluster.ports[0] ?? 0}`;
  await waitFor('the broker alive with its Kafka address', 40_000, async () => {
    const brokers = (await h2Json(`${http}/v1/brokers`)).json as Array<{ state: string; kafkaAddress: string | null }>;
    return brokers.length === 1 && brokers[0]?.state === 'alive' && brokers[0].kafkaAddress !== null ? true : undefined;
  });
  t.equal((await h2Json(`${http}/v1/topics`, 'POST', { name: 'fz', partitions: 3, replicationFactor: 1 })).status, 201);

  const ranges = served();
  const asked = fc.integer({ min: 0, max: ranges.length - 1 }).chain((i) => {
    const range = ranges[i] ?? { apiKey: 18, minVersion: 0, maxVersion: 0 };
    const spec = apis.get(range.apiKey)?.request;
    if (spec === undefined) throw new Error(`no description of API ${range.apiKey}`);
    return fc.integer({ min: range.minVersion, max: range.maxVersion }).chain((version) => fc.record({
      apiKey: fc.constant(range.apiKey),
      version: fc.constant(version),
      body: messageOf(spec, version),
      steering: fc.integer(),
    }));
  });
  const counts = new Map<number, number>();
  /** "api:error" for answers with a top-level error code: shows how deep the requests got. */
  const outcomes = new Map<string, number>();
  await fc.assert(fc.asyncProperty(asked, async ({ apiKey, version, body, steering }) => {
    const request = steer(body, '', seeded(steering)) as Record<string, Value>;
    if (apiKey === PRODUCE_KEY && request.acks === 0) request.acks = 1;
    const answer = await kafkaCall(kafkaPort, apiKey, version, request);
    counts.set(apiKey, (counts.get(apiKey) ?? 0) + 1);
    if (typeof answer.errorCode === 'number') outcomes.set(`${apiKey}:${answer.errorCode}`, (outcomes.get(`${apiKey}:${answer.errorCode}`) ?? 0) + 1);
    return typeof answer === 'object';
  }), { numRuns: RUNS, verbose: fc.VerbosityLevel.Verbose });
  t.comment(`requests per API: ${[...counts].sort((a, b) => a[0] - b[0]).map(([key, n]) => `${key}:${n}`).join(' ')}`);
  t.comment(`top-level answers (api:error count): ${[...outcomes].sort().map(([key, n]) => `${key} ${n}`).join(', ')}`);
  t.equal(cluster.nodes.get(1)?.child.exitCode, null, 'the broker is still running');
  const versions = await kafkaCall(kafkaPort, 18, 3, { clientSoftwareName: 'fuzz', clientSoftwareVersion: '1' });
  t.equal(versions.errorCode, 0, 'and answers');
});
