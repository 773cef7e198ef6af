// The command lines of the client benchmarks: `driftwood bench produce|consume|e2e`. Flags are
// checked before anything starts (a bad one is one line and exit code 2); progress goes to
// stderr, the result to stdout (with --json exactly one object).
import { parseArgs } from 'node:util';
import { bootstrapFrom, integerFlag, printJson, UsageError, type CommandIO } from '../cli/io.js';
import type { Acks } from '../client/producer.js';
import { LOCAL_NODES_MAX, type ClusterTarget, type LatencySummaryMs, type RunContext } from './perf-common.js';
import { benchPerfConsume } from './perf-consume.js';
import { benchPerfE2e, E2E_RECORD_BYTES_MIN, E2E_RECORDS_MAX } from './perf-e2e.js';
import { benchPerfProduce, PRODUCERS_MAX } from './perf-produce.js';
import { benchKafka, KAFKA_BENCH_PARTITIONS_MAX, KAFKA_BENCH_REQUESTS_IN_FLIGHT_MAX, type KafkaBenchResult } from './kafka.js';

export const PERF_USAGE = `  bench produce [--bootstrap HOST:PORT,... | --nodes N] --topic T --records N --record-size B
      [--acks 0|1|all] [--batch-size BYTES] [--linger-ms MS] [--producers K] [--throughput R]
      [--partitions N] [--replication-factor N] [--json]
      K client Producers send N records of B bytes (-1 or no --throughput: as fast as they go);
      records/s, MB/s, latency p50/p95/p99/p99.9/max from send() to its answer
  bench consume [--bootstrap HOST:PORT,... | --nodes N] --topic T --records N [--group G]
      [--timeout-ms MS] [--record-size B] [--json]
      a client Consumer reads N records from the beginning (every partition assigned, or as a
      member of group G); records/s, MB/s, time to the first record. A local cluster is first
      filled with N records of B bytes (default 100) by the produce benchmark
  bench e2e [--bootstrap HOST:PORT,... | --nodes N] --topic T --throughput R --duration S
      [--record-size B] [--acks 0|1|all] [--linger-ms MS] [--grace-ms MS] [--json]
      a Producer at R records/s for S seconds and a Consumer reading at the same time: latency
      from send() to the consumer's poll (p50..max) and records lost (not read within the grace)
  bench raw-produce [--target HOST:PORT | --nodes N] [--partitions N] [--replication-factor N]
      [--acks 0|1|all] [--record-bytes N] [--batch-records N] [--requests-in-flight N] [--seconds N] [--json]
      raw HTTP record batches at the partition leaders for a fixed time (no client library)
  bench kafka [--records N] [--record-bytes N] [--batch-records N] [--requests-in-flight N]
      [--partitions N] [--fetch-bytes N] [--without-kcat] [--json]
      one 3-node cluster with Kafka listeners, RF 3, min.insync.replicas 2: N records produced
      raw over HTTP/2 and as Produce v9 (prebuilt batches, acks=all), then read back with HTTP
      GETs and Fetch v11, the paths taking turns (ABBA); records/s, MB/s, p50/p99 and the ratio
      Kafka/HTTP; with kcat on PATH also kcat -P (idempotent, acks=all) and kcat -C -e, timed`;

/** The flags every client benchmark takes: where the cluster is or how to start one. */
const clusterFlags = {
  bootstrap: { type: 'string' },
  nodes: { type: 'string' },
  partitions: { type: 'string' },
  'replication-factor': { type: 'string' },
  topic: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

const PARTITIONS_MAX = 10_000;
const RECORD_BYTES_MAX = 1_000_000;
const RECORDS_MAX = 1_000_000_000;

function clusterTarget(values: { bootstrap?: string | undefined; nodes?: string | undefined; partitions?: string | undefined; 'replication-factor'?: string | undefined }, io: CommandIO): ClusterTarget {
  if (values.bootstrap !== undefined && values.nodes !== undefined) throw new UsageError('--nodes starts a local cluster; it cannot go with --bootstrap');
  const partitions = values.partitions === undefined ? undefined : integerFlag('partitions', values.partitions, 1, 1, PARTITIONS_MAX);
  const replicationFactor = values['replication-factor'] === undefined ? undefined : integerFlag('replication-factor', values['replication-factor'], 1, 1, LOCAL_NODES_MAX);
  const optional = { ...(partitions === undefined ? {} : { partitions }), ...(replicationFactor === undefined ? {} : { replicationFactor }) };
  if (values.bootstrap !== undefined) return { bootstrap: bootstrapFrom(values.bootstrap, io), ...optional };
  const nodes = integerFlag('nodes', values.nodes, 3, 1, LOCAL_NODES_MAX);
  if (replicationFactor !== undefined && replicationFactor > nodes) throw new UsageError(`--replication-factor ${replicationFactor} is more than --nodes ${nodes}`);
  return { nodes, ...optional };
}

function requiredTopic(topic: string | undefined): string {
  if (topic === undefined || topic.length === 0) throw new UsageError('--topic T is required');
  return topic;
}

function requiredInteger(name: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return integerFlag(name, value, min, min, max);
}

function acksFlag(value: string | undefined, fallback: Acks): Acks {
  if (value === undefined) return fallback;
  if (value === '0') return 0;
  if (value === '1') return 1;
  if (value === 'all' || value === '-1') return 'all';
  throw new UsageError(`--acks must be 0, 1 or all, got '${value}'`);
}

/** -1 (or absent) for no limit, else a positive integer of records per second. */
function throughputFlag(value: string | undefined): number {
  if (value === undefined || value.trim() === '-1') return -1;
  return integerFlag('throughput', value, 1, 1, 100_000_000);
}

/**
 * A run context for the command: progress on stderr (every second on a terminal, every five
 * seconds otherwise) and a signal that io.interrupt, SIGINT or SIGTERM aborts, so that the
 * benchmark stops and removes what it started.
 */
function commandContext(io: CommandIO): { context: RunContext; dispose: () => void } {
  const controller = new AbortController();
  const abort = (): void => { controller.abort(); };
  io.interrupt?.addEventListener('abort', abort, { once: true });
  const processSignals = io.interrupt === undefined ? (['SIGINT', 'SIGTERM'] as const) : [];
  for (const name of processSignals) process.on(name, abort);
  const context: RunContext = {
    progress: (line) => { io.stderr(`${line}\n`); },
    progressIntervalMs: process.stderr.isTTY ? 1000 : 5000,
    signal: controller.signal,
  };
  return {
    context,
    dispose: () => {
      io.interrupt?.removeEventListener('abort', abort);
      for (const name of processSignals) process.off(name, abort);
    },
  };
}

async function withContext<T>(io: CommandIO, run: (context: RunContext) => Promise<T>): Promise<T> {
  const { context, dispose } = commandContext(io);
  try {
    return await run(context);
  } finally {
    dispose();
  }
}

export function latencyText(latency: LatencySummaryMs): string {
  return `p50 ${latency.p50} ms, p95 ${latency.p95} ms, p99 ${latency.p99} ms, p99.9 ${latency.p999} ms, max ${latency.max} ms`;
}

export async function runBenchPerfProduce(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...clusterFlags,
      records: { type: 'string' },
      'record-size': { type: 'string' },
      acks: { type: 'string' },
      'batch-size': { type: 'string' },
      'linger-ms': { type: 'string' },
      producers: { type: 'string' },
      throughput: { type: 'string' },
    },
  });
  const options = {
    ...clusterTarget(values, io),
    topic: requiredTopic(values.topic),
    records: requiredInteger('records', values.records, 1, RECORDS_MAX),
    recordBytes: requiredInteger('record-size', values['record-size'], 0, RECORD_BYTES_MAX),
    acks: acksFlag(values.acks, 'all'),
    ...(values['batch-size'] === undefined ? {} : { batchBytesMax: integerFlag('batch-size', values['batch-size'], 16384, 1, 64 * 1024 * 1024) }),
    ...(values['linger-ms'] === undefined ? {} : { lingerMs: integerFlag('linger-ms', values['linger-ms'], 5, 0, 60_000) }),
    producers: integerFlag('producers', values.producers, 1, 1, PRODUCERS_MAX),
    throughputRecordsPerSec: throughputFlag(values.throughput),
  };
  const result = await withContext(io, (context) => benchPerfProduce(options, context));
  if (values.json) {
    printJson(io, result);
    return;
  }
  io.stdout(`${result.records} records sent, ${result.recordsPerSec} records/sec (${result.mbPerSec} MB/sec), ${result.errors} errors\n`);
  io.stdout(`latency ${latencyText(result.latencyMs)}\n`);
}

export async function runBenchPerfConsume(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: { ...clusterFlags, records: { type: 'string' }, group: { type: 'string' }, 'timeout-ms': { type: 'string' }, 'record-size': { type: 'string' } },
  });
  const target = clusterTarget(values, io);
  if (target.bootstrap !== undefined && values['record-size'] !== undefined) throw new UsageError('--record-size sizes the records a local cluster is filled with; it cannot go with --bootstrap');
  if (values.group?.length === 0) throw new UsageError('--group names a group');
  const options = {
    ...target,
    topic: requiredTopic(values.topic),
    records: requiredInteger('records', values.records, 1, RECORDS_MAX),
    ...(values.group === undefined ? {} : { groupId: values.group }),
    idleTimeoutMs: integerFlag('timeout-ms', values['timeout-ms'], 30_000, 1, 3_600_000),
    fillRecordBytes: integerFlag('record-size', values['record-size'], 100, 0, RECORD_BYTES_MAX),
  };
  const result = await withContext(io, (context) => benchPerfConsume(options, context));
  if (values.json) {
    printJson(io, result);
    return;
  }
  io.stdout(`${result.records} records read, ${result.recordsPerSec} records/sec (${result.mbPerSec} MB/sec), first record after ${result.timeToFirstRecordMs} ms\n`);
}

export async function runBenchPerfE2e(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: { ...clusterFlags, throughput: { type: 'string' }, duration: { type: 'string' }, 'record-size': { type: 'string' }, acks: { type: 'string' }, 'linger-ms': { type: 'string' }, 'grace-ms': { type: 'string' } },
  });
  const target = clusterTarget(values, io);
  const topic = requiredTopic(values.topic);
  const throughputRecordsPerSec = requiredInteger('throughput', values.throughput, 1, 10_000_000);
  const durationSeconds = requiredInteger('duration', values.duration, 1, 86_400);
  if (throughputRecordsPerSec * durationSeconds > E2E_RECORDS_MAX) throw new UsageError(`--throughput times --duration is at most ${E2E_RECORDS_MAX} records`);
  const options = {
    ...target,
    topic,
    throughputRecordsPerSec,
    durationSeconds,
    recordBytes: integerFlag('record-size', values['record-size'], 100, E2E_RECORD_BYTES_MIN, RECORD_BYTES_MAX),
    acks: acksFlag(values.acks, 'all'),
    lingerMs: integerFlag('linger-ms', values['linger-ms'], 1, 0, 60_000),
    graceMs: integerFlag('grace-ms', values['grace-ms'], 5000, 0, 3_600_000),
  };
  const result = await withContext(io, (context) => benchPerfE2e(options, context));
  if (values.json) {
    printJson(io, result);
    return;
  }
  io.stdout(`${result.records} records end to end, ${result.recordsPerSec} records/sec, ${result.lost} lost\n`);
  io.stdout(`latency ${latencyText(result.latencyMs)}\n`);
}

/** Records `bench kafka` sends by default on each path (a few seconds each here). */
const KAFKA_RECORDS_DEFAULT = 1_000_000;
/** The most records one `bench kafka` path sends: each is kept on disk three times over. */
const KAFKA_RECORDS_MAX = 100_000_000;
/** HTTP's fetch limit (fetchLimits.fetchBytesMax) and the codec's bytes limit: 64 MiB. */
const KAFKA_FETCH_BYTES_MAX = 64 * 1024 * 1024;

export async function runBenchKafka(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      records: { type: 'string' },
      'record-bytes': { type: 'string' },
      'batch-records': { type: 'string' },
      'requests-in-flight': { type: 'string' },
      partitions: { type: 'string' },
      'fetch-bytes': { type: 'string' },
      'without-kcat': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const options = {
    records: integerFlag('records', values.records, KAFKA_RECORDS_DEFAULT, 1, KAFKA_RECORDS_MAX),
    recordBytes: integerFlag('record-bytes', values['record-bytes'], 100, 1, RECORD_BYTES_MAX),
    batchRecords: integerFlag('batch-records', values['batch-records'], 1000, 1, 100_000),
    requestsInFlight: integerFlag('requests-in-flight', values['requests-in-flight'], 16, 1, KAFKA_BENCH_REQUESTS_IN_FLIGHT_MAX),
    partitions: integerFlag('partitions', values.partitions, 3, 1, KAFKA_BENCH_PARTITIONS_MAX),
    fetchBytes: integerFlag('fetch-bytes', values['fetch-bytes'], 4 * 1024 * 1024, 1024, KAFKA_FETCH_BYTES_MAX),
    kcat: !values['without-kcat'],
  };
  if (options.recordBytes * options.batchRecords > 8 * 1024 * 1024 - 1024) throw new UsageError('--record-bytes times --batch-records is at most 8 MiB less 1 KiB (the Kafka listener\'s request limit)');
  const result = await withContext(io, (context) => benchKafka(options, context));
  if (values.json) {
    printJson(io, result);
    return;
  }
  io.stdout(kafkaText(result));
}

function kafkaText(result: KafkaBenchResult): string {
  const produce = (name: string, side: KafkaBenchResult['produce']['http']): string => `${name} ${side.recordsPerSec} records/s (${side.megabytesPerSec} MB/s), p50 ${side.latencyMsP50} ms, p99 ${side.latencyMsP99} ms, ${side.failedRequests} failed requests\n`;
  const consume = (name: string, side: KafkaBenchResult['consume']['http']): string => `${name} ${side.recordsPerSec} records/s (${side.megabytesPerSec} MB/s), ${side.requests} requests in ${side.passes} passes\n`;
  const kcat = result.kcat.outcome === 'measured'
    ? `kcat -P         ${result.kcat.produce?.recordsPerSec ?? 0} records/s; kcat -C -e ${result.kcat.consume?.recordsPerSec ?? 0} records/s\n`
    : `kcat ${result.kcat.outcome}: ${result.kcat.note ?? ''}\n`;
  return `${result.records} records of ${result.recordBytes} B, ${result.partitions} partitions, RF ${result.replicationFactor}, acks=all\n`
    + produce('produce HTTP/2  ', result.produce.http) + produce('produce Kafka   ', result.produce.kafka) + `produce ratio Kafka/HTTP ${result.produce.ratio}\n`
    + consume('consume HTTP/2  ', result.consume.http) + consume('consume Kafka   ', result.consume.kafka) + `consume ratio Kafka/HTTP ${result.consume.ratio}\n`
    + kcat;
}
