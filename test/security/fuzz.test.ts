// Hostile input against one real `driftwood start` node (issue 9): fast-check sends every
// route malformed JSON, wrong types for each schema field, huge and negative numbers, long
// strings, truncated and bit-flipped record batches, random bytes, wrong content types and
// bodies over the route's limit, over HTTP/2 and HTTP/1.1. Every answer must be a status from
// an explicit list with an {error: CODE} body whose code is in storage/errors.ts, never a 5xx;
// the process stays up and ready; and the records written before read back byte for byte.
// Replay a failure with FUZZ_SEED=<seed> (and FUZZ_RUNS=<n>); the seed and the shrunk path
// are printed on failure.
import net from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { defaultConnectionLimits, bodyLimits } from '../../src/http/limits.js';
import { buildBatch, RECORDS_PER_BATCH_MAX } from '../../storage/record-batch.js';
import { localCluster, waitFor } from '../helpers/processes.js';
import { BATCH, checkAnswer, fuzzRuns, fuzzSeed, requestArb, sender, STATUSES_ALLOWED, TOPIC, type Answer, type Request } from './fuzz-requests.js';

const SEED = fuzzSeed();
const RUNS = fuzzRuns(500);
/** The property run, shrinking included, stops (as a failure) after this. */
const FUZZ_TIME_MS_MAX = 100_000;

void t.test('hostile input: 4xx with a code, the node up, the data unchanged', { timeout: 180_000 }, async (t) => {
  const cluster = await localCluster(t, 'fuzz', 1);
  cluster.start(1, 'start');
  const origin = `http://127.0.0.1:${cluster.ports[0]}`;
  const { send, json, bytes, close } = sender(origin);
  t.teardown(close);
  const alive = (): boolean => cluster.nodes.get(1)?.child.exitCode === null;

  await waitFor('the node to be ready', 30_000, async () => ((await json('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200 ? true : undefined));
  // Half-open and slow clients, left to the node's timeouts while the fuzz runs: one that
  // connects and says nothing, one that sends half its headers (slowloris).
  const closed = new Set<string>();
  const openedMs = Date.now();
  const silent = net.connect(cluster.ports[0] ?? 0, '127.0.0.1');
  const slow = net.connect(cluster.ports[0] ?? 0, '127.0.0.1', () => { slow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'); });
  for (const [name, socket] of [['silent', silent], ['slow headers', slow]] as const) {
    socket.on('error', () => undefined);
    // Reading, or the node's close (or its 408) would sit unread and 'close' never come.
    socket.resume();
    socket.once('close', () => { closed.add(name); t.comment(`${name} connection closed after ${Date.now() - openedMs} ms`); });
    t.teardown(() => { socket.destroy(); });
  }
  t.equal((await json('POST', '/v1/topics', { name: TOPIC, partitions: 2, replicationFactor: 1 })).status, 201);
  await waitFor('the partitions to be led', 10_000, async () => ((await json('GET', `/v1/topics/${TOPIC}/partitions/1/offsets?timestamp=latest`)).status === 200 ? true : undefined));
  const written = [buildBatch([{ key: Buffer.from('a'), value: Buffer.from('one'), timestampMs: 1_000 }]), buildBatch([{ key: null, value: Buffer.alloc(300, 7), headers: [{ key: 'h', value: Buffer.from('v') }], timestampMs: 2_000 }])];
  for (const partition of [0, 1]) {
    for (const batch of written) {
      t.equal((await send({ method: 'POST', path: `/v1/topics/${TOPIC}/partitions/${partition}/records?acks=1`, http1: false, body: { kind: 'batch', contentType: BATCH, bytes: batch, mustRefuse: false } })).status, 200);
    }
  }
  const readLog = async (partition: number): Promise<Buffer> => {
    const answer = await bytes(`/v1/topics/${TOPIC}/partitions/${partition}/records?offset=0&maxWaitMs=0`);
    t.equal(answer.status, 200);
    return answer.bytes;
  };
  const before = [await readLog(0), await readLog(1)];
  // The group coordinator exists before the fuzz, so that group routes answer rather than "loading".
  await waitFor('the group coordinator', 30_000, async () => ((await json('POST', '/v1/groups/g1/heartbeat', { memberEpoch: 0, subscribedTopics: [TOPIC], sessionTimeoutMs: 10_000 })).status === 200 ? true : undefined));

  const check = (request: Pick<Request, 'route' | 'body'>, answer: Answer): void => { checkAnswer(request, answer, STATUSES_ALLOWED, alive); };

  // Regressions the fuzz (or its first reading of the routes) found; each was a 500 or bad data in.
  const regressions: Array<[Omit<Request, 'route'>, number, string]> = [
    [{ method: 'POST', path: `/v1/topics/${TOPIC}/partitions/0/records`, http1: false, body: { kind: 'JSON null', contentType: 'application/json', bytes: Buffer.from('null'), mustRefuse: true } }, 400, 'INVALID_REQUEST'],
    [{ method: 'POST', path: '/v1/groups/g1/offsets', http1: false, body: { kind: 'offset 1e300', contentType: 'application/json', bytes: Buffer.from(JSON.stringify({ offsets: [{ topic: TOPIC, partition: 0, offset: 1e300 }] })), mustRefuse: true } }, 400, 'INVALID_REQUEST'],
    [{ method: 'POST', path: '/v1/groups/g1/offsets/reset', http1: false, body: { kind: 'reset to 2**63', contentType: 'application/json', bytes: Buffer.from(JSON.stringify({ topic: TOPIC, to: 'offset', value: 2 ** 63 })), mustRefuse: true } }, 400, 'INVALID_REQUEST'],
    [{ method: 'GET', path: `/v1/topics/%zz/partitions/0/records?offset=0`, http1: true, body: { kind: 'bad percent-encoding', mustRefuse: true } }, 400, 'INVALID_REQUEST'],
    [{ method: 'POST', path: '/v1/topics', http1: false, body: { kind: 'text/xml', contentType: 'text/xml', bytes: Buffer.from('<a/>'), mustRefuse: true } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ method: 'POST', path: '/v1/topics', http1: true, body: { kind: 'over 64 KiB', contentType: 'application/json', bytes: Buffer.alloc(bodyLimits.adminBodyBytesMax + 1, 0x20), mustRefuse: true } }, 413, 'REQUEST_TOO_LARGE'],
    [{ method: 'GET', path: '/v1/nothing', http1: false, body: { kind: 'none', mustRefuse: true } }, 404, 'UNKNOWN_ROUTE'],
  ];
  const tooMany = buildBatch(Array.from({ length: RECORDS_PER_BATCH_MAX + 1 }, () => ({ key: null, value: null, timestampMs: 0 })));
  regressions.push([{ method: 'POST', path: `/v1/topics/${TOPIC}/partitions/0/records?acks=1`, http1: false, body: { kind: 'too many records', contentType: BATCH, bytes: tooMany, mustRefuse: true } }, 413, 'RECORD_LIST_TOO_LARGE']);
  for (const [request, status, code] of regressions) {
    const answer = await send(request);
    check({ ...request, route: request.path }, answer);
    t.match({ status: answer.status, body: JSON.parse(answer.text) as unknown }, { status, body: { error: code } }, `${request.method} ${request.path.slice(0, 60)} (${request.body.kind}): ${status} ${code}`);
  }

  t.comment(`fuzz seed ${SEED}, ${RUNS} runs (replay: FUZZ_SEED=${SEED})`);
  const started = Date.now();
  const statuses = new Map<number, number>();
  await fc.assert(fc.asyncProperty(requestArb, async (request) => {
    const answer = await send(request);
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    check(request, answer);
  }), { seed: SEED, numRuns: RUNS, verbose: true, interruptAfterTimeLimit: FUZZ_TIME_MS_MAX, markInterruptAsFailure: true });
  t.comment(`${RUNS} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

  await waitFor('the node to close the silent and the slow connection', defaultConnectionLimits.headersTimeoutMs + 5000, () => Promise.resolve(closed.size === 2 ? true : undefined));
  t.same([...closed].sort(), ['silent', 'slow headers'], `a silent connection and one sending headers slowly are closed (headersTimeoutMs ${defaultConnectionLimits.headersTimeoutMs})`);
  t.ok(alive(), 'the node is still running');
  t.equal((await json('GET', '/readyz')).status, 200, 'and ready');
  for (const partition of [0, 1]) {
    const after = await readLog(partition);
    t.ok(after.length >= (before[partition]?.length ?? 0) && after.subarray(0, before[partition]?.length).equals(before[partition] ?? Buffer.alloc(0)), `partition ${partition}: the records written before read back byte-identical`);
  }
});
