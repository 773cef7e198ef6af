// The data endpoints: produce to and consume from partition leaders, and look up offsets.
// The partition routes take and return record batches as bytes (Kafka's RecordBatch v2,
// content type application/vnd.driftwood.batch) and are served by the partition's leader only
// (NOT_LEADER_OR_FOLLOWER names the leader and its address). JSON is for people: a JSON
// produce is turned into one batch, a JSON fetch decodes the batches it returns. The topic
// route picks partitions as Kafka's default partitioner does and forwards to their leaders.
// POST /v1/producer-ids hands idempotent producers their id (the partition leaders then drop
// their retried batches, see Partition.appendAsLeader).
import { DriftwoodError } from '../../storage/errors.js';
import { buildBatch, decodeBatch, readBatchHeader, type ProducerRecord } from '../../storage/record-batch.js';
import type { TopicState } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { bodyLimits, fetchLimits } from '../http/limits.js';
import type { HttpApp } from '../http/node-dual-server.js';
import { partitionForKey } from '../partitioner.js';
import type { Acks } from '../replica/partition.js';
import { refuseInternal } from './node-admin-routes.js';
import type { Broker } from './node-broker.js';

export const BATCH_CONTENT_TYPE = 'application/vnd.driftwood.batch';
/** Records one JSON produce may carry (well within RECORDS_PER_BATCH_MAX: a JSON produce is one batch). */
const JSON_RECORDS_MAX = 10_000;
const PRODUCE_TIMEOUT_MS_DEFAULT = 30_000;
const PRODUCE_TIMEOUT_MS_MAX = 300_000;
const { fetchBytesDefault: FETCH_BYTES_DEFAULT, fetchBytesMax: FETCH_BYTES_MAX, fetchWaitMsDefault: FETCH_WAIT_MS_DEFAULT, fetchWaitMsMax: FETCH_WAIT_MS_MAX } = fetchLimits;
/** Offsets and timestamps are int64 in Kafka; here they stay within the integers a double holds exactly. */
const INT64_SAFE_MAX = Number.MAX_SAFE_INTEGER;
/** An offsets lookup has no timeout of its own; this is how long it waits for a leadership being taken. */
const ROLE_WAIT_MS_OFFSETS = 1_000;
/** Slack on top of the produce timeout before a forwarded produce counts as lost. */
const FORWARD_SLACK_MS = 5000;
/** Kafka sets the timestamp-type bit (3) of the batch attributes for LogAppendTime. */
const LOG_APPEND_TIME_FLAG = 0x08;

const partitionParams = {
  type: 'object',
  required: ['topic', 'partition'],
  properties: { topic: { type: 'string', minLength: 1, maxLength: 249 }, partition: { type: 'integer', minimum: 0, maximum: 100_000 } },
} as const;

const produceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    acks: { type: 'string', enum: ['0', '1', 'all', '-1'] },
    timeoutMs: { type: 'integer', minimum: 1, maximum: PRODUCE_TIMEOUT_MS_MAX },
  },
} as const;

const jsonRecord = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: { type: ['string', 'null'], maxLength: 1024 * 1024 },
    value: { type: ['string', 'null'] },
    headers: { type: 'object', additionalProperties: { type: ['string', 'null'] }, maxProperties: 64 },
    timestamp: { type: 'integer', minimum: 0, maximum: INT64_SAFE_MAX },
  },
} as const;

const jsonProduceBody = {
  type: 'object',
  required: ['records'],
  additionalProperties: false,
  properties: {
    records: { type: 'array', minItems: 1, maxItems: JSON_RECORDS_MAX, items: jsonRecord },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
  },
} as const;

const fetchQuery = {
  type: 'object',
  required: ['offset'],
  additionalProperties: false,
  properties: {
    offset: { type: 'integer', minimum: 0, maximum: INT64_SAFE_MAX },
    maxBytes: { type: 'integer', minimum: 1, maximum: FETCH_BYTES_MAX },
    maxWaitMs: { type: 'integer', minimum: 0, maximum: FETCH_WAIT_MS_MAX },
    minBytes: { type: 'integer', minimum: 0, maximum: FETCH_BYTES_MAX },
    format: { type: 'string', enum: ['binary', 'json'] },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    leaderEpoch: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
  },
} as const;

const offsetsQuery = {
  type: 'object',
  required: ['timestamp'],
  additionalProperties: false,
  properties: { timestamp: { type: 'string', pattern: '^(earliest|latest|[0-9]{1,16})$' } },
} as const;

interface JsonRecord { key?: string | null; value?: string | null; headers?: Record<string, string | null>; timestamp?: number }
interface JsonProduce { records: JsonRecord[]; encoding?: 'utf8' | 'base64' }

export function addDataRoutes(app: HttpApp, current: () => Broker): void {
  app.addContentTypeParser(BATCH_CONTENT_TYPE, { parseAs: 'buffer' }, (_request, body, done) => { done(null, body); });
  const stickyPartition = new Map<string, number>();

  const produce = { bodyLimit: bodyLimits.produceBodyBytesMax };
  app.post('/v1/topics/:topic/partitions/:partition/records', { ...produce, schema: { params: partitionParams, querystring: produceQuery } }, async (request, reply) => {
    const { topic, partition } = request.params as { topic: string; partition: number };
    refuseInternal(topic);
    const query = request.query as { acks?: string; timeoutMs?: number };
    const batch = Buffer.isBuffer(request.body) ? request.body : jsonToBatch(request.body, current().node.clock.nowMs());
    const acks = parseAcks(query.acks);
    const timeoutMs = query.timeoutMs ?? PRODUCE_TIMEOUT_MS_DEFAULT;
    const replicas = current().node.replicas;
    if (acks === 0) {
      // Fire and forget, as Kafka's acks=0: the answer comes before the append.
      await replicas.readyLeaderFor(topic, partition, timeoutMs);
      replicas.produce(topic, partition, batch, 0, timeoutMs).catch(() => undefined);
      return reply.status(202).send({ partition, recordCount: countRecords(batch) });
    }
    const result = await replicas.produce(topic, partition, batch, acks, timeoutMs);
    return {
      partition,
      baseOffset: result.baseOffset,
      recordCount: result.recordCount,
      ...(result.logAppendTimeMs >= 0 ? { logAppendTime: result.logAppendTimeMs } : {}),
    };
  });

  // JSON only: a binary producer picks its partitions itself, as Kafka clients do.
  app.post('/v1/topics/:topic/records', { ...produce, schema: { params: { type: 'object', required: ['topic'], properties: { topic: { type: 'string', minLength: 1, maxLength: 249 } } }, querystring: produceQuery, body: jsonProduceBody } }, async (request) => {
    const { topic: name } = request.params as { topic: string };
    refuseInternal(name);
    const query = request.query as { acks?: string; timeoutMs?: number };
    const body = request.body as JsonProduce;
    const broker = current();
    const topic = broker.node.image.topic(name);
    if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    const count = broker.node.image.partitions(topic.topicId)?.length ?? 0;
    // Null keys stick to one partition per request and move on for the next (Kafka's sticky partitioner).
    const sticky = ((stickyPartition.get(topic.topicId) ?? -1) + 1) % count;
    stickyPartition.set(topic.topicId, sticky);
    const groups = new Map<number, number[]>();
    body.records.forEach((record, i) => {
      const key = record.key === undefined || record.key === null ? null : decodeText(record.key, body.encoding);
      const partition = key === null ? sticky : partitionForKey(key, count);
      groups.set(partition, [...(groups.get(partition) ?? []), i]);
    });
    const offsets: Array<{ partition: number; offset: number | null }> = body.records.map(() => ({ partition: -1, offset: null }));
    const acks = parseAcks(query.acks);
    const timeoutMs = query.timeoutMs ?? PRODUCE_TIMEOUT_MS_DEFAULT;
    await Promise.all([...groups].map(async ([partition, indexes]) => {
      const part: JsonProduce = { records: indexes.map((i) => body.records[i] ?? {}), ...(body.encoding === undefined ? {} : { encoding: body.encoding }) };
      const baseOffset = await produceAnywhere(broker, topic, partition, part, query.acks ?? 'all', acks, timeoutMs);
      indexes.forEach((recordIndex, j) => { offsets[recordIndex] = { partition, offset: baseOffset === null ? null : baseOffset + j }; });
    }));
    return { offsets };
  });

  app.get('/v1/topics/:topic/partitions/:partition/records', { schema: { params: partitionParams, querystring: fetchQuery } }, async (request, reply) => {
    const { topic, partition } = request.params as { topic: string; partition: number };
    const query = request.query as { offset: number; maxBytes?: number; maxWaitMs?: number; minBytes?: number; format?: 'binary' | 'json'; encoding?: 'utf8' | 'base64'; leaderEpoch?: number };
    const read = await current().node.replicas.consume(topic, partition, query.offset, {
      bytesMax: query.maxBytes ?? FETCH_BYTES_DEFAULT,
      minBytes: query.minBytes ?? 1,
      maxWaitMs: query.maxWaitMs ?? FETCH_WAIT_MS_DEFAULT,
      ...(query.leaderEpoch === undefined ? {} : { currentLeaderEpoch: query.leaderEpoch }),
    });
    const json = query.format === 'json' || (query.format === undefined && (request.headers.accept ?? '').includes('application/json'));
    if (!json) {
      return reply
        .type(BATCH_CONTENT_TYPE)
        .header('x-driftwood-high-watermark', String(read.highWatermark))
        .header('x-driftwood-log-start-offset', String(read.logStartOffset))
        .header('x-driftwood-next-offset', String(read.nextOffset))
        .header('x-driftwood-leader-epoch', String(read.leaderEpoch))
        .send(read.bytes);
    }
    return {
      records: batchesToJson(read.bytes, query.offset, query.encoding ?? 'utf8'),
      highWatermark: read.highWatermark,
      logStartOffset: read.logStartOffset,
      nextOffset: read.nextOffset,
      leaderEpoch: read.leaderEpoch,
    };
  });

  // A new idempotent producer's id and epoch, from any broker (Kafka's InitProducerId). No
  // body, or an empty JSON object: nothing is configurable yet.
  app.post('/v1/producer-ids', async (request) => {
    const body: unknown = request.body;
    const empty = body === undefined || body === null || (typeof body === 'object' && !Buffer.isBuffer(body) && Object.keys(body).length === 0);
    if (!empty) throw new DriftwoodError('INVALID_REQUEST', 'POST /v1/producer-ids takes no body, or {}');
    return current().node.initProducerId();
  });

  app.get('/v1/topics/:topic/partitions/:partition/offsets', { schema: { params: partitionParams, querystring: offsetsQuery } }, async (request) => {
    const { topic, partition } = request.params as { topic: string; partition: number };
    const { timestamp } = request.query as { timestamp: string };
    const found = await offsetForTimestamp(current(), topic, partition, timestamp === 'earliest' || timestamp === 'latest' ? timestamp : Number(timestamp));
    const { leaderEpoch: _epoch, timestampMs, ...rest } = found;
    return { partition, ...rest, ...(timestampMs === null ? {} : { timestamp: timestampMs }) };
  });
}

/**
 * Kafka's ListOffsets on a partition this broker leads (the HTTP offsets route and the Kafka
 * listener share it): the log start ('earliest'), the high watermark ('latest'), or the first
 * committed offset whose timestamp is at or after `timestamp` (-1 when none is that recent).
 */
export async function offsetForTimestamp(broker: Broker, topic: string, partition: number, timestamp: 'earliest' | 'latest' | number): Promise<{ offset: number; timestampMs: number | null; logStartOffset: number; highWatermark: number; leaderEpoch: number }> {
  const replicas = broker.node.replicas;
  const { replica } = await replicas.readyLeaderFor(topic, partition, ROLE_WAIT_MS_OFFSETS);
  await replicas.establishedHighWatermark(replica, broker.node.clock.monotonicMs() + ROLE_WAIT_MS_OFFSETS);
  const bounds = { logStartOffset: replica.log.logStartOffset, highWatermark: replica.highWatermark, leaderEpoch: replica.state.leaderEpoch };
  if (timestamp === 'earliest') return { ...bounds, offset: bounds.logStartOffset, timestampMs: null };
  if (timestamp === 'latest') return { ...bounds, offset: bounds.highWatermark, timestampMs: null };
  const found = await replica.log.offsetForTimestamp(timestamp);
  // Kafka answers -1 when no committed record is that recent.
  if (found === null || found.offset >= replica.highWatermark) return { ...bounds, offset: -1, timestampMs: null };
  return { ...bounds, offset: found.offset, timestampMs: found.timestampMs };
}

/** Produces here when this node leads the partition, else forwards to the leader; null offset for acks=0. */
async function produceAnywhere(broker: Broker, topic: TopicState, partition: number, records: JsonProduce, acksText: string, acks: Acks, timeoutMs: number): Promise<number | null> {
  const state = broker.node.image.partition(topic.topicId, partition);
  if (state === undefined || state.leader === NO_LEADER) throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `${topic.name}-${partition} has no leader now; retry`, { leader: null });
  if (state.leader === broker.node.id) {
    const batch = jsonToBatch(records, broker.node.clock.nowMs());
    if (acks === 0) {
      broker.node.replicas.produce(topic.name, partition, batch, 0, timeoutMs).catch(() => undefined);
      return null;
    }
    return (await broker.node.replicas.produce(topic.name, partition, batch, acks, timeoutMs)).baseOffset;
  }
  const path = `/v1/topics/${encodeURIComponent(topic.name)}/partitions/${partition}/records?acks=${acksText}&timeoutMs=${timeoutMs}`;
  const answer = await broker.peers.json<{ baseOffset?: number }>(state.leader, 'POST', path, records, timeoutMs + FORWARD_SLACK_MS);
  return answer.baseOffset ?? null;
}

function parseAcks(text: string | undefined): Acks {
  if (text === '0') return 0;
  if (text === '1') return 1;
  return -1;
}

function decodeText(text: string, encoding: 'utf8' | 'base64' | undefined): Buffer {
  return Buffer.from(text, encoding === 'base64' ? 'base64' : 'utf8');
}

/** A JSON produce as one batch (the only per-record work on a broker, and only for JSON). */
function jsonToBatch(body: unknown, nowMs: number): Buffer {
  // Any JSON may arrive on the partition route, whose body has no schema: null and 5 included.
  const produce = typeof body === 'object' && body !== null ? (body as Partial<JsonProduce>) : undefined;
  if (produce === undefined || !Array.isArray(produce.records) || produce.records.length === 0) {
    throw new DriftwoodError('INVALID_REQUEST', `the body is neither ${BATCH_CONTENT_TYPE} bytes nor JSON {records: [...]}`);
  }
  if (produce.records.length > JSON_RECORDS_MAX) throw new DriftwoodError('INVALID_REQUEST', `at most ${JSON_RECORDS_MAX} records per request`);
  const encoding: unknown = produce.encoding; // unchecked JSON on the partition route
  if (encoding !== undefined && encoding !== 'utf8' && encoding !== 'base64') throw new DriftwoodError('INVALID_REQUEST', 'encoding is utf8 or base64');
  produce.records.forEach(checkJsonRecord);
  const records: ProducerRecord[] = produce.records.map((record) => ({
    key: record.key === undefined || record.key === null ? null : decodeText(record.key, produce.encoding),
    value: record.value === undefined || record.value === null ? null : decodeText(record.value, produce.encoding),
    headers: Object.entries(record.headers ?? {}).map(([key, value]) => ({ key, value: value === null ? null : decodeText(value, produce.encoding) })),
    timestampMs: record.timestamp ?? nowMs,
  }));
  return buildBatch(records);
}

/** The JSON record schema, checked by hand where the body may also be bytes. */
function checkJsonRecord(record: unknown, index: number): void {
  const bad = (why: string): DriftwoodError => new DriftwoodError('INVALID_REQUEST', `records[${index}]: ${why}`);
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw bad('is not an object');
  const { key, value, headers, timestamp, ...rest } = record as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw bad(`unknown field ${extra[0] ?? ''}`);
  const stringOrNull = (field: unknown): boolean => field === undefined || field === null || typeof field === 'string';
  if (!stringOrNull(key) || !stringOrNull(value)) throw bad('key and value are strings or null');
  if (timestamp !== undefined && !(Number.isSafeInteger(timestamp) && (timestamp as number) >= 0)) throw bad('timestamp is a non-negative integer (ms)');
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw bad('headers is an object');
    const entries = Object.entries(headers);
    if (entries.length > 64 || !entries.every(([, v]) => stringOrNull(v))) throw bad('headers map at most 64 names to strings or null');
  }
}

function countRecords(bytes: Buffer): number {
  let count = 0;
  for (let position = 0; position + 61 <= bytes.length;) {
    const header = readBatchHeader(bytes, position);
    count += header.recordCount;
    position += header.sizeBytes;
  }
  return count;
}

function batchesToJson(bytes: Buffer, fromOffset: number, encoding: 'utf8' | 'base64'): Array<Record<string, unknown>> {
  const text = (value: Buffer | null): string | null => (value === null ? null : value.toString(encoding));
  const records: Array<Record<string, unknown>> = [];
  for (let position = 0; position < bytes.length;) {
    const decoded = decodeBatch(bytes, position);
    const { header } = decoded;
    const logAppendTime = (header.attributes & LOG_APPEND_TIME_FLAG) !== 0;
    for (const record of decoded.records) {
      const offset = header.baseOffset + record.offsetDelta;
      // A batch is returned whole; records before the asked offset are left out.
      if (offset < fromOffset) continue;
      records.push({
        offset,
        key: text(record.key),
        value: text(record.value),
        timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + record.timestampDelta,
        headers: Object.fromEntries(record.headers.map((h) => [h.key, text(h.value)])),
      });
    }
    position += header.sizeBytes;
  }
  return records;
}
