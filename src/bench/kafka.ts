// `driftwood bench kafka` (issue 11: the Kafka listener within 20% of HTTP/2). ONE fresh
// 3-node loopback cluster, every node started with --kafka-listen, topics at RF 3 with
// min.insync.replicas 2, so that both paths meet the same brokers:
//   produce: batches of 1,000 100-byte records built once, sent to the partition leaders
//            round robin with 16 requests in flight in all, acks=all: POST .../records over
//            HTTP/2 (what `bench raw-produce` does) against Produce v9 over TCP encoded with our
//            own codec (acks=-1), the same number of records into a topic of the same shape.
//   consume: the records the Kafka side wrote, read back from each leader by both paths, one
//            request in flight per partition and every partition at once: GET .../records
//            against Fetch v11, both asking for the same bytes per request.
// The machine drifts (the 2 cores are shared), so the paths take turns in ABBA order: HTTP/2
// sends the first half of its batches, Kafka both halves, HTTP/2 its second half; the reads go
// HTTP/2, Kafka, Kafka, HTTP/2, each a whole pass. A side's rate is its records over its time.
//   kcat:    when kcat is on PATH, `kcat -P` of as many lines from a file (idempotent,
//            acks=all) and `kcat -C -e` reading them back, each timed whole (kafka-kcat.ts).
// Reads are counted from the batch headers and must come to exactly what the topic holds,
// which must be what was acknowledged: a benchmark that reads nothing cannot pass.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { BATCH_HEADER_BYTES, buildBatch, lastOffsetOf, readBatchHeader } from '../../storage/record-batch.js';
import { createTopic, machine, startCluster, topicView, type LocalCluster, type Node, type PartitionView } from './cluster.js';
import { KafkaConnection } from './kafka-connection.js';
import { kcatRows, type KcatResult } from './kafka-kcat.js';
import { every, latencyHistogram, latencySummaryMs, recordMs, round, throwIfAborted, type RunContext } from './perf-common.js';

export interface KafkaBenchOptions {
  readonly records: number;
  readonly recordBytes: number;
  readonly batchRecords: number;
  /** Produce requests in flight over all partitions, on each path. */
  readonly requestsInFlight: number;
  readonly partitions: number;
  /** What one consume request asks for (HTTP maxBytes; Fetch maxBytes and partitionMaxBytes). */
  readonly fetchBytes: number;
  /** Run the kcat rows when kcat is on PATH. */
  readonly kcat: boolean;
}

export interface ProduceSide {
  records: number;
  requests: number;
  failedRequests: number;
  /** Failed requests by error (HTTP error code, or Kafka error number). */
  errors: Record<string, number>;
  seconds: number;
  recordsPerSec: number;
  megabytesPerSec: number;
  latencyMsP50: number;
  latencyMsP99: number;
}

export interface ConsumeSide {
  /** Records each pass read: every record of the topic. */
  records: number;
  passes: number;
  requests: number;
  seconds: number;
  recordsPerSec: number;
  megabytesPerSec: number;
}

export interface KafkaBenchResult {
  machine: string;
  nodes: number;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  records: number;
  recordBytes: number;
  batchRecords: number;
  requestsInFlight: number;
  fetchBytes: number;
  /** ratio: Kafka's records/s over HTTP/2's. */
  produce: { http: ProduceSide; kafka: ProduceSide; ratio: number };
  consume: { http: ConsumeSide; kafka: ConsumeSide; ratio: number };
  kcat: KcatResult;
}

const NODES = 3;
const REPLICATION_FACTOR = 3;
const MIN_INSYNC_REPLICAS = 2;
const PRODUCE_TIMEOUT_MS = 30_000;
/** A request (either path) with no answer for this long fails the run. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Consume requests wait at most this for data; everything asked for is below the high watermark already. */
const FETCH_WAIT_MS = 500;
const PRODUCE_API = { key: 0, version: 9 } as const;
const FETCH_API = { key: 1, version: 11 } as const;
const NO_ERROR = 0;
export const KAFKA_BENCH_PARTITIONS_MAX = 64;
export const KAFKA_BENCH_REQUESTS_IN_FLIGHT_MAX = 256;

export async function benchKafka(options: KafkaBenchOptions, context: RunContext = {}): Promise<KafkaBenchResult> {
  checkOptions(options);
  context.progress?.(`starting ${NODES} nodes with Kafka listeners`);
  const cluster = await startCluster(NODES, { kafka: true });
  const connections = new Map<number, KafkaConnection>();
  try {
    for (const node of cluster.nodes) connections.set(node.id, await KafkaConnection.connect('127.0.0.1', kafkaPortOf(node), 'driftwood-bench', REQUEST_TIMEOUT_MS));
    const configs = { 'min.insync.replicas': MIN_INSYNC_REPLICAS };
    const byIndex = (views: PartitionView[]): PartitionView[] => [...views].sort((a, b) => a.partition - b.partition);
    const httpTopic = byIndex(await createTopic(cluster, 'bench-http', options.partitions, REPLICATION_FACTOR, configs));
    const kafkaTopic = byIndex(await createTopic(cluster, 'bench-kafka', options.partitions, REPLICATION_FACTOR, configs));
    const batches = prebuiltBatches(options);
    const half = Math.ceil(batches.length / 2);
    const httpTally = newTally();
    const kafkaTally = newTally();
    const httpSend: ProduceOne = (i, batch) => httpProduceOne(cluster, httpTopic, i, batch);
    const kafkaSend: ProduceOne = (i, batch) => kafkaProduceOne(connections, kafkaTopic, i, batch);
    const rounds: Array<[string, ProduceTally, ProduceOne, number, number]> = [
      ['HTTP/2 produce, first half', httpTally, httpSend, 0, half],
      [`Kafka produce (Produce v${PRODUCE_API.version}), first half`, kafkaTally, kafkaSend, 0, half],
      ['Kafka produce, second half', kafkaTally, kafkaSend, half, batches.length],
      ['HTTP/2 produce, second half', httpTally, httpSend, half, batches.length],
    ];
    for (const [label, tally, send, from, to] of rounds) {
      context.progress?.(`${label}: batches ${from} to ${to} of ${batches.length}`);
      await produceRound(label, batches.slice(from, to), from, options, context, tally, send);
    }
    const httpProduce = produceResult(httpTally, options.recordBytes);
    const kafkaProduce = produceResult(kafkaTally, options.recordBytes);
    await expectHeld(cluster, 'bench-http', httpProduce);
    const ends = await expectHeld(cluster, 'bench-kafka', kafkaProduce);
    const httpRead = newReadTally();
    const kafkaRead = newReadTally();
    const httpFetchOne: FetchOne = (p, offset) => httpFetch(cluster, kafkaTopic, p, offset, options.fetchBytes);
    const kafkaFetchOne: FetchOne = (p, offset) => kafkaFetch(connections, kafkaTopic, p, offset, options.fetchBytes);
    const passes: Array<[string, ReadTally, FetchOne]> = [
      ['HTTP/2 consume, pass 1', httpRead, httpFetchOne],
      [`Kafka consume (Fetch v${FETCH_API.version}), pass 1`, kafkaRead, kafkaFetchOne],
      ['Kafka consume, pass 2', kafkaRead, kafkaFetchOne],
      ['HTTP/2 consume, pass 2', httpRead, httpFetchOne],
    ];
    for (const [label, tally, fetch] of passes) {
      context.progress?.(`${label}: the ${sum(ends)} records Kafka produced`);
      await consumePass(label, kafkaTopic, ends, context, tally, fetch);
    }
    const httpConsume = consumeResult(httpRead, sum(ends), options.recordBytes);
    const kafkaConsume = consumeResult(kafkaRead, sum(ends), options.recordBytes);
    const kcat = await kcatRows({ cluster, records: options.records, recordBytes: options.recordBytes, partitions: options.partitions, enabled: options.kcat, context });
    return {
      machine: machine(), nodes: NODES, partitions: options.partitions, replicationFactor: REPLICATION_FACTOR, minInsyncReplicas: MIN_INSYNC_REPLICAS,
      records: options.records, recordBytes: options.recordBytes, batchRecords: options.batchRecords, requestsInFlight: options.requestsInFlight, fetchBytes: options.fetchBytes,
      produce: { http: httpProduce, kafka: kafkaProduce, ratio: ratio(kafkaProduce.recordsPerSec, httpProduce.recordsPerSec) },
      consume: { http: httpConsume, kafka: kafkaConsume, ratio: ratio(kafkaConsume.recordsPerSec, httpConsume.recordsPerSec) },
      kcat,
    };
  } finally {
    for (const connection of connections.values()) connection.close();
    await cluster.stop();
  }
}

function checkOptions(options: KafkaBenchOptions): void {
  assert.ok(Number.isSafeInteger(options.records) && options.records >= 1, 'records is a positive integer');
  assert.ok(Number.isSafeInteger(options.recordBytes) && options.recordBytes >= 1, 'recordBytes is a positive integer');
  assert.ok(Number.isSafeInteger(options.batchRecords) && options.batchRecords >= 1, 'batchRecords is a positive integer');
  assert.ok(options.requestsInFlight >= 1 && options.requestsInFlight <= KAFKA_BENCH_REQUESTS_IN_FLIGHT_MAX, `requestsInFlight is 1 to ${KAFKA_BENCH_REQUESTS_IN_FLIGHT_MAX}`);
  assert.ok(options.partitions >= 1 && options.partitions <= KAFKA_BENCH_PARTITIONS_MAX, `partitions is 1 to ${KAFKA_BENCH_PARTITIONS_MAX}`);
  assert.ok(options.fetchBytes >= BATCH_HEADER_BYTES, 'a fetch can hold a batch header');
}

function kafkaPortOf(node: Node): number {
  assert.ok(node.kafkaPort !== null, `node ${node.id} has a Kafka listener`);
  return node.kafkaPort;
}

/** The batches both produce sides send, built once: full ones and a smaller last one when the count does not divide. */
function prebuiltBatches(options: KafkaBenchOptions): Array<{ bytes: Buffer; records: number }> {
  const build = (count: number): Buffer => buildBatch(Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.alloc(options.recordBytes, 97 + (i % 26)), timestampMs: Date.now() })));
  const full = { bytes: build(Math.min(options.batchRecords, options.records)), records: Math.min(options.batchRecords, options.records) };
  const fullCount = Math.floor(options.records / full.records);
  const rest = options.records - fullCount * full.records;
  const batches = Array.from({ length: fullCount }, () => full);
  if (rest > 0) batches.push({ bytes: build(rest), records: rest });
  assert.equal(batches.reduce((n, b) => n + b.records, 0), options.records, 'the batches hold every record');
  return batches;
}

/** Sends batch i (to partition i mod partitions); resolves with null when acknowledged, else the error. */
type ProduceOne = (index: number, batch: Buffer) => Promise<string | null>;

interface ProduceTally {
  readonly histogram: ReturnType<typeof latencyHistogram>;
  readonly errors: Record<string, number>;
  acknowledged: number;
  requests: number;
  failedRequests: number;
  seconds: number;
}

function newTally(): ProduceTally {
  return { histogram: latencyHistogram(), errors: {}, acknowledged: 0, requests: 0, failedRequests: 0, seconds: 0 };
}

/** Sends `batches` (numbered from `first`, which picks their partitions) with requestsInFlight workers, into the tally. */
async function produceRound(label: string, batches: ReadonlyArray<{ bytes: Buffer; records: number }>, first: number, options: KafkaBenchOptions, context: RunContext, tally: ProduceTally, send: ProduceOne): Promise<void> {
  const before = { acknowledged: tally.acknowledged, answered: tally.histogram.totalCount };
  let next = 0;
  const startedMs = performance.now();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => {
    const done = tally.acknowledged - before.acknowledged;
    context.progress?.(`${label}: ${done} records acknowledged, ${Math.round(done / ((performance.now() - startedMs) / 1000))} records/s`);
  });
  const worker = async (): Promise<void> => {
    for (let i = next++; i < batches.length; i = next++) {
      throwIfAborted(context.signal);
      const batch = batches[i];
      assert.ok(batch !== undefined);
      const sentMs = performance.now();
      const error = await send(first + i, batch.bytes);
      recordMs(tally.histogram, performance.now() - sentMs);
      if (error === null) {
        tally.acknowledged += batch.records;
      } else {
        tally.failedRequests += 1;
        tally.errors[error] = (tally.errors[error] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.requestsInFlight, batches.length) }, worker));
  } finally {
    stopProgress();
  }
  tally.seconds += (performance.now() - startedMs) / 1000;
  tally.requests += batches.length;
  assert.equal(tally.histogram.totalCount - before.answered, batches.length, 'every batch was answered');
}

function produceResult(tally: ProduceTally, recordBytes: number): ProduceSide {
  const latency = latencySummaryMs(tally.histogram);
  const seconds = Math.max(tally.seconds, 1e-6);
  return {
    records: tally.acknowledged, requests: tally.requests, failedRequests: tally.failedRequests, errors: tally.errors, seconds: round(seconds, 3),
    recordsPerSec: Math.round(tally.acknowledged / seconds), megabytesPerSec: round((tally.acknowledged * recordBytes) / seconds / 1e6, 1),
    latencyMsP50: round(latency.p50, 1), latencyMsP99: round(latency.p99, 1),
  };
}

function leaderOf(cluster: LocalCluster, partitions: readonly PartitionView[], index: number): { node: Node; partition: number } {
  const partition = partitions[index % partitions.length];
  const node = cluster.nodes.find((n) => n.id === partition?.leader);
  if (partition === undefined || node === undefined) throw new Error('benchmark: a partition has no leader');
  return { node, partition: partition.partition };
}

async function httpProduceOne(cluster: LocalCluster, partitions: readonly PartitionView[], index: number, batch: Buffer): Promise<string | null> {
  const { node, partition } = leaderOf(cluster, partitions, index);
  // The same request `bench raw-produce` sends, a copy of the prebuilt batch each time.
  const response = await node.client.request({ method: 'POST', path: `/v1/topics/bench-http/partitions/${partition}/records?acks=all&timeoutMs=${PRODUCE_TIMEOUT_MS}`, idempotent: true, headers: { 'content-type': 'application/vnd.driftwood.batch' }, body: Buffer.from(batch), headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const text = await response.body.text();
  if (response.statusCode < 300) return null;
  const code = (JSON.parse(text) as { error?: string }).error;
  return code ?? `HTTP ${response.statusCode}`;
}

async function kafkaProduceOne(connections: ReadonlyMap<number, KafkaConnection>, partitions: readonly PartitionView[], index: number, batch: Buffer): Promise<string | null> {
  const view = partitions[index % partitions.length];
  const connection = connections.get(view?.leader ?? -1);
  if (view === undefined || connection === undefined) throw new Error('benchmark: a partition has no leader');
  // encodeRequest copies the batch into the frame, as the HTTP side copies it into its body.
  const answer = await connection.call(PRODUCE_API.key, PRODUCE_API.version, {
    transactionalId: null, acks: -1, timeoutMs: PRODUCE_TIMEOUT_MS,
    topicData: [{ name: 'bench-kafka', partitionData: [{ index: view.partition, records: batch }] }],
  });
  const responses = answer.responses as ReadonlyArray<{ partitionResponses: ReadonlyArray<{ index: number; errorCode: number }> }>;
  const partition = responses[0]?.partitionResponses[0];
  if (partition === undefined || partition.index !== view.partition) throw new Error('benchmark: a Produce answer without the partition asked');
  return partition.errorCode === NO_ERROR ? null : `kafka error ${partition.errorCode}`;
}

/** Each partition's high watermark, which must add up to what was acknowledged (more only when some request failed). */
async function expectHeld(cluster: LocalCluster, topic: string, side: ProduceSide): Promise<number[]> {
  const ends = (await topicView(cluster, topic)).map((p) => p.highWatermark ?? 0);
  const held = sum(ends);
  const consistent = side.failedRequests === 0 ? held === side.records : held >= side.records;
  if (!consistent) throw new Error(`benchmark: ${topic} holds ${held} records below its high watermarks, ${side.records} were acknowledged`);
  return ends;
}

/** Reads one request's worth of partition p from offset; resolves with the record batch bytes. */
type FetchOne = (partition: number, offset: number) => Promise<Buffer>;

interface ReadTally { records: number; requests: number; seconds: number; passes: number }

function newReadTally(): ReadTally {
  return { records: 0, requests: 0, seconds: 0, passes: 0 };
}

/** Reads every partition from 0 to its end, all partitions at once, one request in flight each; every record must come. */
async function consumePass(label: string, partitions: readonly PartitionView[], ends: readonly number[], context: RunContext, tally: ReadTally, fetch: FetchOne): Promise<void> {
  const total = sum(ends);
  let records = 0;
  const startedMs = performance.now();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => context.progress?.(`${label}: ${records} of ${total} records read, ${Math.round(records / ((performance.now() - startedMs) / 1000))} records/s`));
  const readPartition = async (view: PartitionView): Promise<void> => {
    const end = ends[view.partition] ?? 0;
    for (let offset = 0; offset < end;) {
      throwIfAborted(context.signal);
      const bytes = await fetch(view.partition, offset);
      tally.requests += 1;
      const read = countBatches(bytes, offset);
      if (read.records === 0) throw new Error(`benchmark: ${label} of partition ${view.partition} at offset ${offset} returned no whole batch (${bytes.length} bytes)`);
      assert.ok(read.nextOffset <= end, 'nothing is read past the high watermark');
      records += read.records;
      offset = read.nextOffset;
    }
  };
  try {
    await Promise.all(partitions.map(readPartition));
  } finally {
    stopProgress();
  }
  tally.seconds += (performance.now() - startedMs) / 1000;
  if (records !== total) throw new Error(`benchmark: ${label} read ${records} records, the topic holds ${total}`);
  tally.records += records;
  tally.passes += 1;
}

function consumeResult(tally: ReadTally, records: number, recordBytes: number): ConsumeSide {
  assert.equal(tally.records, records * tally.passes, 'each pass read every record');
  const seconds = Math.max(tally.seconds, 1e-6);
  return {
    records, passes: tally.passes, requests: tally.requests, seconds: round(seconds, 3),
    recordsPerSec: Math.round(tally.records / seconds), megabytesPerSec: round((tally.records * recordBytes) / seconds / 1e6, 1),
  };
}

/** Records in the whole batches of `bytes`, which must start at `offset` and follow on without gaps. */
export function countBatches(bytes: Buffer, offset: number): { records: number; nextOffset: number } {
  let records = 0;
  let nextOffset = offset;
  for (let position = 0; position + BATCH_HEADER_BYTES <= bytes.length;) {
    const header = readBatchHeader(bytes, position);
    // A fetch may end inside a batch (Kafka's partial last batch); the next request reads it whole.
    if (position + header.sizeBytes > bytes.length) break;
    if (header.baseOffset !== nextOffset) throw new Error(`benchmark: a batch at offset ${header.baseOffset}, expected ${nextOffset}`);
    assert.equal(header.recordCount, header.lastOffsetDelta + 1, 'an uncompacted batch holds one record per offset');
    records += header.recordCount;
    nextOffset = lastOffsetOf(header) + 1;
    position += header.sizeBytes;
  }
  return { records, nextOffset };
}

async function httpFetch(cluster: LocalCluster, partitions: readonly PartitionView[], partition: number, offset: number, fetchBytes: number): Promise<Buffer> {
  const { node } = leaderOf(cluster, partitions, partition);
  const response = await node.client.request({ method: 'GET', path: `/v1/topics/bench-kafka/partitions/${partition}/records?offset=${offset}&maxBytes=${fetchBytes}&maxWaitMs=${FETCH_WAIT_MS}`, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const bytes = Buffer.from(await response.body.arrayBuffer());
  if (response.statusCode !== 200) throw new Error(`benchmark: HTTP fetch of partition ${partition} answered ${response.statusCode}: ${bytes.toString().slice(0, 200)}`);
  return bytes;
}

async function kafkaFetch(connections: ReadonlyMap<number, KafkaConnection>, partitions: readonly PartitionView[], partition: number, offset: number, fetchBytes: number): Promise<Buffer> {
  const view = partitions[partition];
  const connection = connections.get(view?.leader ?? -1);
  if (view === undefined || connection === undefined) throw new Error('benchmark: a partition has no leader');
  const answer = await connection.call(FETCH_API.key, FETCH_API.version, {
    replicaId: -1, maxWaitMs: FETCH_WAIT_MS, minBytes: 1, maxBytes: fetchBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic: 'bench-kafka', partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(offset), logStartOffset: -1n, partitionMaxBytes: fetchBytes }] }],
    forgottenTopicsData: [], rackId: '',
  });
  const data = (answer.responses as ReadonlyArray<{ partitions: ReadonlyArray<{ partitionIndex: number; errorCode: number; records: Buffer | null }> }>)[0]?.partitions[0];
  if (data === undefined || data.partitionIndex !== partition) throw new Error('benchmark: a Fetch answer without the partition asked');
  if (data.errorCode !== NO_ERROR) throw new Error(`benchmark: Fetch of partition ${partition} at ${offset}: kafka error ${data.errorCode}`);
  return data.records ?? Buffer.alloc(0);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function ratio(kafka: number, http: number): number {
  return http > 0 ? round(kafka / http, 3) : 0;
}
