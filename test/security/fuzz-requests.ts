// The hostile requests of the fuzz tests (issue 9), shared by the one-node run (fuzz.test.ts)
// and the three-node run with a token (fuzz-cluster.test.ts): every route a broker serves, a
// valid-looking body for each to mutate, and fast-check generators of malformed JSON, wrong
// types, huge and negative numbers, long strings, truncated and bit-flipped batches, random
// bytes, wrong content types, oversize bodies and hostile path segments and query values; a
// sender over HTTP/2 and HTTP/1.1, and the check every answer must pass.
import fc from 'fast-check';
import { Client } from 'undici';
import { controllerRequestKinds } from '../../src/broker/controller-requests.js';
import { bodyLimits } from '../../src/http/limits.js';
import { errorCodes } from '../../storage/errors.js';
import { buildBatch, type ProducerRecord } from '../../storage/record-batch.js';

export const BATCH = 'application/vnd.driftwood.batch';
/** The topic written before the fuzz, whose records must read back unchanged after it. */
export const TOPIC = 'fuzzdata';
/** A request unanswered by then fails the property (a hung answer is a failure too). */
export const REQUEST_TIMEOUT_MS = 10_000;

/** FUZZ_SEED, or a fresh seed that the test prints. */
export function fuzzSeed(): number {
  return process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);
}

/** FUZZ_RUNS, or the test's own count. */
export function fuzzRuns(fallback: number): number {
  return process.env.FUZZ_RUNS === undefined ? fallback : Number(process.env.FUZZ_RUNS);
}

/**
 * What a node may answer to hostile input: success when the input happens to be valid, 4xx
 * refusals (421 from a node that does not lead, control or coordinate what was asked). No 401
 * (a test with a token checks those itself), no 5xx at all.
 */
export const STATUSES_ALLOWED: ReadonlySet<number> = new Set([200, 201, 202, 204, 400, 404, 409, 413, 415, 416, 421]);

export type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
export interface Route { readonly method: Method; readonly path: string; readonly bodyBytesMax: number; readonly base?: Record<string, unknown> }

/** Every route a broker serves (from app.printRoutes()), with a valid-looking body to mutate. */
export const routes: readonly Route[] = [
  ...['/healthz', '/readyz', '/metrics', '/v1/raft', '/v1/brokers', '/v1/cluster', '/v1/topics', '/v1/topics/:topic', '/v1/groups', '/v1/groups/:group',
    '/v1/groups/:group/coordinator', '/v1/groups/:group/offsets', '/internal/groups', '/internal/groups/:group', '/internal/replica/offsets/:topicId',
    '/v1/topics/:topic/partitions/:partition/records', '/v1/topics/:topic/partitions/:partition/offsets', '/v1/reassignments'].map((path) => ({ method: 'GET' as const, path, bodyBytesMax: bodyLimits.adminBodyBytesMax })),
  { method: 'POST', path: '/v1/topics', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: { name: 'fz-new', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': 60_000 } } },
  { method: 'POST', path: '/v1/elections/preferred', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: {} },
  { method: 'POST', path: '/v1/producer-ids', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: {} },
  // Moves name a topic that does not exist, and plans stay dry runs or invalid after one mutation.
  { method: 'POST', path: '/v1/reassignments', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: { partitions: [{ topic: 'fz-missing', partition: 0, replicas: [1] }] } },
  { method: 'POST', path: '/v1/cluster/rebalance', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: { dryRun: true, unknownField: 1 } },
  { method: 'POST', path: '/v1/brokers/:id/decommission', bodyBytesMax: bodyLimits.adminBodyBytesMax, base: { dryRun: true, unknownField: 1 } },
  { method: 'POST', path: '/v1/topics/:topic/partitions/:partition/records', bodyBytesMax: bodyLimits.produceBodyBytesMax, base: { records: [{ key: 'k', value: 'v', headers: { h: 'v' }, timestamp: 5 }], encoding: 'utf8' } },
  { method: 'POST', path: '/v1/topics/:topic/records', bodyBytesMax: bodyLimits.produceBodyBytesMax, base: { records: [{ key: 'k', value: 'v', headers: { h: 'v' }, timestamp: 5 }], encoding: 'base64' } },
  { method: 'POST', path: '/v1/groups/:group/heartbeat', bodyBytesMax: bodyLimits.groupBodyBytesMax, base: { memberId: null, memberEpoch: 0, clientId: 'c', subscribedTopics: [TOPIC], ownedPartitions: [], sessionTimeoutMs: 10_000, assignor: 'range' } },
  { method: 'POST', path: '/v1/groups/:group/offsets', bodyBytesMax: bodyLimits.groupBodyBytesMax, base: { memberId: 'm', memberEpoch: 1, offsets: [{ topic: TOPIC, partition: 0, offset: 1, metadata: '' }] } },
  { method: 'POST', path: '/v1/groups/:group/offsets/reset', bodyBytesMax: bodyLimits.groupBodyBytesMax, base: { topic: TOPIC, partitions: [0], to: 'offset', value: 1, dryRun: true } },
  { method: 'POST', path: '/internal/raft/messages', bodyBytesMax: bodyLimits.internalBodyBytesMax, base: { messages: [] } },
  { method: 'POST', path: '/internal/replica/fetch', bodyBytesMax: bodyLimits.internalBodyBytesMax, base: { followerId: 99, sessionId: 0, sessionEpoch: 0, positions: [], removed: [], maxWaitMs: 0, bytesMax: 1024, partitionBytesMax: 1024 } },
  // Bodies that stay invalid after one mutation where a valid one would change the cluster
  // (register a broker, shut broker 1 down): the required field left out cannot come back.
  ...controllerRequestKinds.map((kind) => ({ method: 'POST' as const, path: `/internal/controller/${kind}`, bodyBytesMax: bodyLimits.internalBodyBytesMax, base: controllerBase(kind) })),
  { method: 'DELETE', path: '/v1/topics/:name', bodyBytesMax: bodyLimits.adminBodyBytesMax },
  { method: 'DELETE', path: '/v1/groups/:group', bodyBytesMax: bodyLimits.adminBodyBytesMax },
];

function controllerBase(kind: string): Record<string, unknown> {
  if (kind === 'register') return { brokerId: 99, address: '127.0.0.1:1' };
  if (kind === 'shutdown' || kind === 'allocate-producer-ids') return { brokerId: 99 };
  if (kind === 'heartbeat') return { brokerId: 99, brokerEpoch: 0 };
  if (kind === 'alter-partitions') return { brokerId: 99, brokerEpoch: 0, partitions: [{ topicId: 'x', partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [99] }] };
  if (kind === 'replica-status') return { brokerId: 99, brokerEpoch: 0, offline: [{ topicId: 'x', partition: 0 }] };
  if (kind === 'rebalance') return { dryRun: true, unknownField: 1 };
  if (kind === 'decommission-broker') return { brokerId: 99, unknownField: 1 };
  if (kind === 'create-topic') return { name: 'fz-internal', partitions: 1, replicationFactor: 1 };
  if (kind === 'delete-topic') return { name: 'fz-missing' };
  return {};
}

/** Numbers and values of the wrong type, for any field. */
const hostileValues: readonly unknown[] = [
  -1, -(2 ** 63), 2 ** 63, 2 ** 53, 1e308, -1e308, 1.5, 0.1, 2 ** 31, 'x'.repeat(10_000), '', '0', '-1', '1e308', null, true, false, [], [null], { a: 1 }, 'latest',
];
const hostile = fc.oneof(fc.constantFrom(...hostileValues), fc.integer({ min: -(2 ** 31), max: -1 }), fc.string({ maxLength: 20 }), fc.double({ noDefaultInfinity: true, noNaN: true }));

/** A path segment: names that exist, names that do not, hostile text (encoded), broken encodings (raw). */
function segment(forDelete: boolean): fc.Arbitrary<string> {
  const known = forDelete ? fc.constantFrom('fz-missing', '__consumer_offsets') : fc.constantFrom(TOPIC, 'missing', '__consumer_offsets', 'g1');
  return fc.oneof(
    { weight: 3, arbitrary: known },
    { weight: 2, arbitrary: fc.string({ maxLength: 300 }).filter((s) => s !== TOPIC).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(10_000), '%', '%zz', '%00', '..', '%2e%2e', '%C0%AF', '-1', '1e308', '9223372036854775808') },
  );
}

function numberText(): fc.Arbitrary<string> {
  return fc.oneof(fc.constantFrom('0', '1', '-1', '1e308', '2.5', '9223372036854775808', '9007199254740993', 'abc', '', '0x10', 'latest', 'earliest'), fc.integer().map(String));
}

const queryKeys = ['offset', 'maxBytes', 'maxWaitMs', 'minBytes', 'format', 'encoding', 'leaderEpoch', 'timestamp', 'acks', 'timeoutMs', 'topic', 'extra'];

/** A query string of known and unknown keys with hostile values; long polls kept short. */
const queryArb = fc.dictionary(fc.constantFrom(...queryKeys), fc.oneof(numberText(), fc.constantFrom('json', 'binary', 'base64', 'all', '0')), { maxKeys: 5 }).map((query) => {
  const waitMs = Number(query.maxWaitMs);
  // A valid long poll at the log end would wait; the fuzz wants answers, not waits.
  if (query.maxWaitMs === undefined || (Number.isFinite(waitMs) && waitMs > 50)) query.maxWaitMs = '0';
  if (query.timeoutMs !== undefined && Number(query.timeoutMs) > 2000) query.timeoutMs = '2000';
  const text = new URLSearchParams(query).toString();
  return text.length === 0 ? '' : `?${text}`;
});

export interface Body { readonly kind: string; readonly contentType?: string; readonly bytes?: Buffer; readonly mustRefuse: boolean }

/** A body that prints short in a counterexample (an 8 MiB buffer would not). */
export function body(kind: string, contentType: string | undefined, bytes: Buffer | undefined, mustRefuse: boolean): Body {
  const shown = bytes === undefined ? 'no body' : `${bytes.length} bytes ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}${bytes.length > 120 ? '...' : ''}`;
  return {
    kind,
    ...(contentType === undefined ? {} : { contentType }),
    ...(bytes === undefined ? {} : { bytes }),
    mustRefuse,
    [fc.toStringMethod]: () => `{${kind}, ${contentType ?? 'no content type'}, ${shown}${mustRefuse ? ', must be refused' : ''}}`,
  } as Body;
}

const records = fc.array(fc.record({ key: fc.option(fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes))), value: fc.option(fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes))), timestampMs: fc.nat({ max: 2 ** 40 }) }), { minLength: 1, maxLength: 10 })
  .map((list): ProducerRecord[] => list.map((r) => ({ key: r.key, value: r.value, timestampMs: r.timestampMs })));

/** CRC-covered bytes and the framing fields: a flip there must be refused. */
function flipIsRefused(position: number): boolean {
  return !(position < 8 || (position >= 12 && position < 16));
}

function bodyArb(route: Route): fc.Arbitrary<Body> {
  const json = (kind: string, text: string | undefined, mustRefuse = false): Body => body(kind, 'application/json', Buffer.from(text ?? ''), mustRefuse);
  // Only the partition produce route reads record batches; elsewhere a batch is just bytes.
  const readsBatches = route.path.endsWith('/partitions/:partition/records');
  const mutated = route.base === undefined ? fc.constant(json('none', undefined)) : fc.tuple(fc.constantFrom(...Object.keys(route.base), 'extra'), hostile, fc.boolean()).map(([field, value, remove]) => {
    const changed = new Map(Object.entries(route.base ?? {}));
    if (remove) changed.delete(field);
    else changed.set(field, value);
    return json(`${remove ? 'without' : 'hostile'} ${field}`, JSON.stringify(Object.fromEntries(changed)));
  });
  return fc.oneof(
    { weight: 4, arbitrary: mutated },
    { weight: 2, arbitrary: fc.json({ maxDepth: 3 }).map((text) => json('fc.json', text)) },
    { weight: 2, arbitrary: fc.anything({ maxDepth: 2 }).map((value) => json('anything', JSON.stringify(value))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 50 }).filter((text) => !parsesAsJson(`{${text}`)).map((text) => json('malformed JSON', `{${text}`, true)) },
    { weight: 2, arbitrary: fc.tuple(records, fc.nat(), fc.boolean()).map(([list, at, truncate]) => {
      const batch = buildBatch(list);
      if (truncate) return body(`batch truncated at ${at % batch.length}`, BATCH, batch.subarray(0, at % batch.length), readsBatches);
      const flipped = Buffer.from(batch);
      const position = at % (flipped.length * 8);
      flipped[position >> 3] = (flipped[position >> 3] ?? 0) ^ (1 << (position & 7));
      return body(`batch with bit ${position} flipped`, BATCH, flipped, readsBatches && flipIsRefused(position >> 3));
    }) },
    { weight: 2, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 2000 }), fc.constantFrom(BATCH, 'application/json', 'application/octet-stream', 'text/plain', undefined)).map(([bytes, contentType]) => body('random bytes', contentType, Buffer.from(bytes), false)) },
    { weight: 1, arbitrary: fc.constantFrom('text/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'image/png').map((contentType) => body(`content type ${contentType}`, contentType, Buffer.from('{"records":[]}'), true)) },
    { weight: 1, arbitrary: fc.nat({ max: 1024 }).map((extra) => body(`oversize by ${extra + 1}`, readsBatches ? BATCH : 'application/json', Buffer.alloc(route.bodyBytesMax + extra + 1, 0x20), true)) },
  );
}

export interface Request { readonly method: Method; readonly path: string; readonly body: Body; readonly http1: boolean; readonly route: string }

function fill(path: string, forDelete: boolean): fc.Arbitrary<string> {
  const names = [...path.matchAll(/:(\w+)/g)].map((match) => match[1] ?? '');
  return fc.tuple(...names.map((name) => (name === 'partition' ? numberText().map(encodeURIComponent) : segment(forDelete)))).map((values) => {
    let filled = path;
    names.forEach((name, i) => { filled = filled.replace(`:${name}`, values[i] ?? ''); });
    return filled;
  });
}

export const requestArb: fc.Arbitrary<Request> = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(...routes).chain((route) => fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom<Method>('PUT', 'PATCH', 'DELETE', 'POST') }).chain((method) => fc.record({
    method: fc.constant(method),
    // A route's path sent as DELETE names no topic whose data the test reads back.
    path: fc.tuple(fill(route.path, method === 'DELETE'), queryArb).map(([path, query]) => path + query),
    body: route.method === 'GET' || route.method === 'DELETE' ? fc.constant(body('none', undefined, undefined, false)) : bodyArb(route),
    http1: fc.boolean(),
    route: fc.constant(`${route.method} ${route.path}`),
  }))) },
  { weight: 1, arbitrary: fc.record({ method: fc.constantFrom<Method>('GET', 'POST'), path: fc.webPath().map((p) => `/${p}`), body: fc.constant(body('none', undefined, undefined, false)), http1: fc.boolean(), route: fc.constant('unknown') }) },
);

export interface Answer { readonly status: number; readonly text: string; readonly headers: Record<string, unknown> }
/** The status recorded when the node cut a connection or stream mid-body (an oversize refusal). */
export const CLOSED = 0;

export interface Sender {
  /** One request, with `headers` added (an Authorization header, say). */
  send: (request: Omit<Request, 'route'>, headers?: Record<string, string | string[]>) => Promise<Answer>;
  /** A JSON request over HTTP/2. */
  json: (method: Method, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer>;
  /** A GET over HTTP/2 whose answer is kept as bytes (record batches). */
  bytes: (path: string, headers?: Record<string, string>) => Promise<{ status: number; bytes: Buffer }>;
  close: () => Promise<void>;
}

/** What undici reports when the node cut a stream or connection that was still sending a body. */
const CUT_CODES: ReadonlySet<unknown> = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_INFO', 'ERR_HTTP2_STREAM_ERROR']);

/**
 * Requests to `origin`: one HTTP/2 session, a fresh HTTP/1.1 connection for each. A body over
 * the route's limit gets a session of its own: the node refuses it unread, and a session that
 * carried a few such bodies can break for the requests after it ("stream half-closed",
 * ENHANCE_YOUR_CALM) while the node itself is fine.
 */
export function sender(origin: string): Sender {
  const connect = (): Client => new Client(origin, { allowH2: true, useH2c: true } as Client.Options);
  const h2 = connect();
  const send = async (request: Omit<Request, 'route'>, extra: Record<string, string | string[]> = {}): Promise<Answer> => {
    const oversize = request.body.kind.startsWith('oversize');
    const client = request.http1 || oversize ? (request.http1 ? new Client(origin) : connect()) : h2;
    try {
      const headers: Record<string, string | string[]> = { ...extra, ...(request.body.contentType === undefined ? {} : { 'content-type': request.body.contentType }) };
      // undici's HTTP/2 client cannot send a body with DELETE (and then hangs): none there.
      const body = request.body.bytes === undefined || request.method === 'DELETE' ? {} : { body: request.body.bytes };
      const response = await client.request({ method: request.method, path: request.path, headers, ...body, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
      return { status: response.statusCode, text: await response.body.text(), headers: response.headers };
    } catch (error) {
      // The node answers 413 (or 401) and stops reading while a large body is still being
      // written: curl shows the answer, undici may report the cut instead.
      if (oversize && CUT_CODES.has((error as { code?: unknown }).code)) return { status: CLOSED, text: '', headers: {} };
      throw error;
    } finally {
      if (client !== h2) await client.destroy();
    }
  };
  const json = (method: Method, path: string, value?: unknown, headers: Record<string, string> = {}): Promise<Answer> => send({ method, path, http1: false, body: { kind: 'json', contentType: 'application/json', ...(value === undefined ? {} : { bytes: Buffer.from(JSON.stringify(value)) }), mustRefuse: false } }, headers);
  const bytes = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: Buffer }> => {
    const response = await h2.request({ method: 'GET', path, headers, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
    return { status: response.statusCode, bytes: Buffer.from(await response.body.arrayBuffer()) };
  };
  return { send, json, bytes, close: () => h2.destroy() };
}

/** One line naming the request and the answer, for failure messages. */
export function describe(request: Pick<Request, 'route' | 'body'>, answer: Answer): string {
  return `${request.route} (${request.body.kind}) -> ${answer.status} ${answer.text.slice(0, 300)}`;
}

/**
 * Throws unless the answer is one hostile input may get: a status from `allowed`, a refusal
 * of what must be refused, an {error: CODE} body with a code from storage/errors.ts on every
 * 4xx, and the node(s) still running.
 */
export function checkAnswer(request: Pick<Request, 'route' | 'body'>, answer: Answer, allowed: ReadonlySet<number>, alive: () => boolean): void {
  const where = describe(request, answer);
  if (answer.status === CLOSED) {
    if (!alive()) throw new Error(`a node died: ${where}`);
    return;
  }
  if (!allowed.has(answer.status)) throw new Error(`status ${answer.status} is not allowed: ${where}`);
  if (request.body.mustRefuse && (answer.status < 400 || answer.status >= 500)) throw new Error(`bad input was not refused: ${where}`);
  if (answer.status >= 400) {
    const parsed = JSON.parse(answer.text) as { error?: unknown };
    if (typeof parsed.error !== 'string' || !(parsed.error in errorCodes)) throw new Error(`no known error code: ${where}`);
  }
  if (!alive()) throw new Error(`a node died: ${where}`);
}

/** Whether `text` is JSON after all ('{' + '}' is): such text is not malformed input (cluster fuzz seed 51251743). */
function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
