// `driftwood bench all` (and `make bench`): every benchmark of issue 8 in one run on fresh
// loopback clusters, one table of figure | measured | target | met?, and the raw results as
// JSON. A benchmark that fails is a row that says so; the others still run. Two produce rows
// use the raw-HTTP benchmark (batches built once, 16 requests in flight: what the brokers
// take), one the client Producer with its defaults (what an application gets); consume and
// e2e go through the client library too. The Kafka rows (issue 11) compare the Kafka listener
// with HTTP/2 on one cluster (`bench kafka`): met when Kafka reaches 80% of HTTP/2's rate.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { integerFlag, type CommandIO } from '../cli/io.js';
import { benchIdle, benchProduce, machine, type IdleBenchResult, type ProduceBenchResult } from './cluster.js';
import { benchPerfConsume, type PerfConsumeResult } from './perf-consume.js';
import { benchPerfE2e, type PerfE2eResult } from './perf-e2e.js';
import { benchPerfProduce, type PerfProduceResult } from './perf-produce.js';
import { benchFailover, type FailoverBenchResult } from './failover.js';
import { benchStorage, type StorageBenchResult } from './storage.js';
import { benchKafka, type KafkaBenchResult } from './kafka.js';

/** 'partly': the measured parts are met, others (named in the row) are not measured. */
export type Met = 'yes' | 'no' | 'partly' | 'n/a' | 'not yet measured' | 'failed';

export interface SuiteRow {
  readonly figure: string;
  readonly measured: string;
  readonly target: string;
  readonly met: Met;
}

export interface SuiteOptions {
  /** Bytes the storage benchmark appends (the standalone default is ~1 GiB; the suite uses less). */
  readonly storageBytes: number;
  readonly produceSeconds: number;
  /** Partitions of the idle row; the issue's figure is 10,000. */
  readonly idlePartitions: number;
  readonly idleSeconds: number;
  /** Records each path of the Kafka rows sends and reads back. */
  readonly kafkaRecords: number;
  readonly progress: (line: string) => void;
}

export interface SuiteResult {
  machine: string;
  seconds: number;
  rows: SuiteRow[];
  results: {
    storage?: StorageBenchResult;
    produceRf1?: ProduceBenchResult;
    produceRf3?: ProduceBenchResult;
    produceRf3Client?: PerfProduceResult;
    consume?: PerfConsumeResult;
    e2e?: PerfE2eResult;
    failover?: FailoverBenchResult;
    kafka?: KafkaBenchResult;
    idle?: IdleBenchResult;
  };
  errors: Record<string, string>;
}

/** The targets of issue 8 (this 2-core machine, 100-byte records). */
export const TARGETS = {
  produceRf1RecordsPerSec: 821_557,
  produceRf3RecordsPerSec: 421_823,
  consumeRecordsPerSec: 940_521,
  e2eP99Ms: 5,
  failoverWindowMs: 1500,
  idlePartitions: 10_000,
  idleCpuPercentMax: 5,
  idleRssMiBMax: 1024,
  /** Issue 11: the Kafka listener within 20% of the HTTP/2 path, as a floor on Kafka/HTTP. */
  kafkaToHttpRatioMin: 0.8,
} as const;

export const KAFKA_TARGET = 'within 20% of HTTP/2 (Kafka/HTTP >= 0.8)';

/** Records the client produce row sends (about 10 s here). */
const CLIENT_PRODUCE_RECORDS = 1_000_000;
/** Records the consume row reads (after a fill that is not timed). */
const CONSUME_RECORDS = 500_000;
/** How long the end-to-end row sends at its fixed rate. */
const E2E_SECONDS = 10;

const COLUMNS = ['figure', 'measured', 'target', 'met?'] as const;

/** The rows as a Markdown table with padded columns (readable in a terminal and in a README). */
export function formatTable(rows: readonly SuiteRow[]): string {
  const cells = rows.map((row) => [row.figure, row.measured, row.target, row.met]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const line = (values: readonly string[]): string => `| ${values.map((value, i) => value.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const text = [line(COLUMNS), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
  assert.equal(text.split('\n').length, rows.length + 2);
  return text;
}

const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

export function produceRow(figure: string, result: ProduceBenchResult, targetRecordsPerSec: number): SuiteRow {
  return {
    figure,
    measured: `${thousands(result.recordsPerSec)} rec/s (${result.megabytesPerSec} MB/s, p50 ${result.latencyMsP50} ms, p99 ${result.latencyMsP99} ms)`,
    target: `>= ${thousands(targetRecordsPerSec)} rec/s`,
    met: result.recordsPerSec >= targetRecordsPerSec ? 'yes' : 'no',
  };
}

export function failoverRow(result: FailoverBenchResult): SuiteRow {
  const window = result.windowMs === null ? 'no acknowledgement after the kill' : `${thousands(result.windowMs)} ms`;
  const met = result.windowMs !== null && result.windowMs <= TARGETS.failoverWindowMs && result.lost === 0;
  return {
    figure: 'failover window after kill -9 of a leader',
    measured: `${window} (longest ack gap ${thousands(result.longestAckGapMs)} ms), lost ${result.lost} of ${thousands(result.acknowledged)} acked, duplicates ${result.duplicates}`,
    target: `<= ${thousands(TARGETS.failoverWindowMs)} ms, nothing lost`,
    met: met ? 'yes' : 'no',
  };
}

export function idleRow(result: IdleBenchResult): SuiteRow {
  const cpuMax = Math.max(...result.cpuPercentByNode);
  const rssMax = Math.max(...result.rssMiBByNode);
  const full = result.partitions >= TARGETS.idlePartitions;
  return {
    figure: `${thousands(result.partitions)} partitions RF=3 on 3 nodes, idle`,
    measured: `in sync ${result.createSeconds} s after the create; CPU per node ${result.cpuPercentByNode.map((cpu) => `${cpu}%`).join(' / ')}; RSS ${result.rssMiBByNode.map((mib) => `${mib}`).join(' / ')} MiB${full ? '' : ` (smaller than the issue's ${thousands(TARGETS.idlePartitions)})`}`,
    target: `${thousands(TARGETS.idlePartitions)} created; CPU < ${TARGETS.idleCpuPercentMax}%; RSS < 1 GiB`,
    met: full && cpuMax < TARGETS.idleCpuPercentMax && rssMax < TARGETS.idleRssMiBMax ? 'yes' : 'no',
  };
}

/** The client Producer's row: what an application gets, next to the raw-HTTP row's broker capacity. */
export function clientProduceRow(figure: string, result: PerfProduceResult, targetRecordsPerSec: number): SuiteRow {
  return {
    figure,
    measured: `${thousands(result.recordsPerSec)} rec/s (${result.mbPerSec} MB/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ${result.errors} errors)`,
    target: `>= ${thousands(targetRecordsPerSec)} rec/s`,
    met: result.recordsPerSec >= targetRecordsPerSec && result.errors === 0 ? 'yes' : 'no',
  };
}

/** The Kafka rows: produce and consume against HTTP/2 on the same cluster, then kcat's when it ran. */
export function kafkaRows(result: KafkaBenchResult): SuiteRow[] {
  const { produce, consume, kcat } = result;
  const setup = `${thousands(result.records)} records, 3 nodes RF=3 acks=all`;
  const latency = (side: KafkaBenchResult['produce']['http']): string => `p50 ${side.latencyMsP50} / p99 ${side.latencyMsP99} ms${side.failedRequests > 0 ? `, ${side.failedRequests} failed requests` : ''}`;
  const rows: SuiteRow[] = [
    {
      figure: `produce via Kafka (Produce v9) vs HTTP/2 (raw batches, ${setup})`,
      measured: `ratio ${produce.ratio}: Kafka ${thousands(produce.kafka.recordsPerSec)} rec/s (${latency(produce.kafka)}) vs HTTP/2 ${thousands(produce.http.recordsPerSec)} rec/s (${latency(produce.http)})`,
      target: KAFKA_TARGET,
      met: produce.ratio >= TARGETS.kafkaToHttpRatioMin && produce.kafka.failedRequests === 0 && produce.http.failedRequests === 0 ? 'yes' : 'no',
    },
    {
      figure: `consume via Kafka (Fetch v11) vs HTTP/2 (GET, ${thousands(result.records)} records read back ${result.consume.kafka.passes} times each)`,
      measured: `ratio ${consume.ratio}: Kafka ${thousands(consume.kafka.recordsPerSec)} rec/s (${consume.kafka.megabytesPerSec} MB/s) vs HTTP/2 ${thousands(consume.http.recordsPerSec)} rec/s (${consume.http.megabytesPerSec} MB/s)`,
      target: KAFKA_TARGET,
      met: consume.ratio >= TARGETS.kafkaToHttpRatioMin ? 'yes' : 'no',
    },
  ];
  const figure = `kcat -P (idempotent, acks=all) / kcat -C -e, ${thousands(result.records)} records`;
  if (kcat.outcome === 'measured') {
    rows.push({ figure, measured: `${thousands(kcat.produce?.recordsPerSec ?? 0)} / ${thousands(kcat.consume?.recordsPerSec ?? 0)} rec/s (whole runs, connecting included)`, target: 'none in issue 11', met: 'n/a' });
  } else {
    rows.push({ figure, measured: `${kcat.outcome}: ${kcat.note ?? ''}`, target: 'none in issue 11', met: kcat.outcome === 'failed' ? 'failed' : 'n/a' });
  }
  return rows;
}

export function storageRow(result: StorageBenchResult): SuiteRow {
  return {
    figure: 'storage: log append / raw sequential writes',
    measured: `ratio ${result.ratio} (${result.appendMBps} vs ${result.rawMBps} MB/s, ${(result.totalBytes / 1e6).toFixed(0)} MB)`,
    target: 'none in issue 8',
    met: 'n/a',
  };
}

function failedRow(figure: string, target: string, error: unknown): SuiteRow {
  return { figure, measured: `failed: ${error instanceof Error ? error.message : String(error)}`, target, met: 'failed' };
}

/** Runs one step; its failure becomes a row and an entry of errors, and the suite goes on. */
async function step<T>(name: string, figure: string, target: string, suite: SuiteResult, progress: (line: string) => void, run: () => Promise<T>, row: (result: T) => SuiteRow | SuiteRow[]): Promise<T | undefined> {
  const startedMs = performance.now();
  progress(`== ${name}`);
  try {
    const result = await run();
    const rows = row(result);
    suite.rows.push(...(Array.isArray(rows) ? rows : [rows]));
    progress(`== ${name} done in ${((performance.now() - startedMs) / 1000).toFixed(0)} s`);
    return result;
  } catch (error) {
    suite.rows.push(failedRow(figure, target, error));
    suite.errors[name] = error instanceof Error ? error.message : String(error);
    progress(`== ${name} failed: ${suite.errors[name]}`);
    return undefined;
  }
}

export async function benchAll(options: SuiteOptions): Promise<SuiteResult> {
  const startedMs = performance.now();
  const suite: SuiteResult = { machine: machine(), seconds: 0, rows: [], results: {}, errors: {} };
  const { progress } = options;
  const prefixed = (name: string) => (line: string): void => { progress(`  ${name}: ${line}`); };
  const storage = await step('storage', 'storage: log append / raw sequential writes', 'none in issue 8', suite, progress, async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-bench-storage-'));
    try {
      return await benchStorage({ dir, totalBytes: options.storageBytes, batchBytes: 16_384, recordBytes: 100, flushIntervalMs: 1000, appendsInFlight: 4, progress: prefixed('storage') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, storageRow);
  if (storage !== undefined) suite.results.storage = storage;
  const produce = { recordBytes: 100, batchRecords: 1000, requestsInFlight: 16, seconds: options.produceSeconds };
  const rf1 = await step('produce-rf1', 'produce 1 node RF=1 acks=1', `>= ${thousands(TARGETS.produceRf1RecordsPerSec)} rec/s`, suite, progress,
    () => benchProduce({ ...produce, nodes: 1, partitions: 1, replicationFactor: 1, acks: '1', progress: prefixed('produce RF=1') }),
    (result) => produceRow('produce 1 node RF=1 acks=1', result, TARGETS.produceRf1RecordsPerSec));
  if (rf1 !== undefined) suite.results.produceRf1 = rf1;
  const rf3 = await step('produce-rf3', 'produce 3 nodes RF=3 acks=all', `>= ${thousands(TARGETS.produceRf3RecordsPerSec)} rec/s`, suite, progress,
    () => benchProduce({ ...produce, nodes: 3, partitions: 3, replicationFactor: 3, acks: 'all', progress: prefixed('produce RF=3') }),
    (result) => produceRow('produce 3 nodes RF=3 acks=all', result, TARGETS.produceRf3RecordsPerSec));
  if (rf3 !== undefined) suite.results.produceRf3 = rf3;
  const clientFigure = 'produce 3 nodes RF=3 acks=all (client Producer, default batching, idempotent)';
  const clientRf3 = await step('produce-rf3-client', clientFigure, `>= ${thousands(TARGETS.produceRf3RecordsPerSec)} rec/s`, suite, progress,
    () => benchPerfProduce({ nodes: 3, partitions: 3, replicationFactor: 3, topic: 'bench-client', records: CLIENT_PRODUCE_RECORDS, recordBytes: 100, acks: 'all' }, { progress: prefixed('client produce') }),
    (result) => clientProduceRow(clientFigure, result, TARGETS.produceRf3RecordsPerSec));
  if (clientRf3 !== undefined) suite.results.produceRf3Client = clientRf3;
  const consumeTarget = `>= ${thousands(TARGETS.consumeRecordsPerSec)} rec/s`;
  const consume = await step('consume', 'consume (client Consumer, 1 node)', consumeTarget, suite, progress,
    () => benchPerfConsume({ nodes: 1, partitions: 1, replicationFactor: 1, topic: 'bench-consume', records: CONSUME_RECORDS }, { progress: prefixed('consume') }),
    (result) => ({ figure: 'consume (client Consumer, 1 node)', measured: `${thousands(result.recordsPerSec)} rec/s (${result.mbPerSec} MB/s, first record ${result.timeToFirstRecordMs} ms)`, target: consumeTarget, met: result.recordsPerSec >= TARGETS.consumeRecordsPerSec ? 'yes' : 'no' }));
  if (consume !== undefined) suite.results.consume = consume;
  // 10% of the replicated maximum the same client reaches (the issue's "10% load"): the e2e
  // run goes through the client Producer, whose ceiling is below the raw-HTTP row's.
  const e2eRate = Math.max(100, Math.round((clientRf3?.recordsPerSec ?? rf3?.recordsPerSec ?? 100_000) / 10));
  const e2eTarget = `<= ${TARGETS.e2eP99Ms} ms`;
  const e2eFigure = `e2e latency p99 at 10% load (${thousands(e2eRate)} rec/s, 3 nodes RF=3 acks=all)`;
  const e2e = await step('e2e', e2eFigure, e2eTarget, suite, progress,
    () => benchPerfE2e({ nodes: 3, partitions: 3, replicationFactor: 3, topic: 'bench-e2e', throughputRecordsPerSec: e2eRate, durationSeconds: E2E_SECONDS }, { progress: prefixed('e2e') }),
    (result) => ({ figure: e2eFigure, measured: `p50 ${result.latencyMs.p50} / p99 ${result.latencyMs.p99} / max ${result.latencyMs.max} ms, lost ${result.lost}`, target: e2eTarget, met: result.latencyMs.p99 <= TARGETS.e2eP99Ms && result.lost === 0 ? 'yes' : 'no' }));
  if (e2e !== undefined) suite.results.e2e = e2e;
  const failover = await step('failover', 'failover window after kill -9 of a leader', `<= ${thousands(TARGETS.failoverWindowMs)} ms, nothing lost`, suite, progress,
    () => benchFailover({ recordsPerSec: 2000, partitions: 3, recordBytes: 100, warmupSeconds: 5, afterKillSeconds: 10, progress: prefixed('failover') }),
    failoverRow);
  if (failover !== undefined) suite.results.failover = failover;
  const kafka = await step('kafka', 'produce and consume via Kafka vs HTTP/2 (3 nodes RF=3 acks=all)', KAFKA_TARGET, suite, progress,
    () => benchKafka({ records: options.kafkaRecords, recordBytes: 100, batchRecords: 1000, requestsInFlight: 16, partitions: 3, fetchBytes: 4 * 1024 * 1024, kcat: true }, { progress: prefixed('kafka') }),
    kafkaRows);
  if (kafka !== undefined) suite.results.kafka = kafka;
  const idleFigure = `${thousands(options.idlePartitions)} partitions RF=3 on 3 nodes, idle`;
  const idle = await step('idle', idleFigure, `${thousands(TARGETS.idlePartitions)} created; CPU < ${TARGETS.idleCpuPercentMax}%; RSS < 1 GiB`, suite, progress,
    () => benchIdle({ partitions: options.idlePartitions, seconds: options.idleSeconds, progress: prefixed('idle') }),
    idleRow);
  if (idle !== undefined) suite.results.idle = idle;
  suite.seconds = Math.round((performance.now() - startedMs) / 1000);
  return suite;
}

/** `driftwood bench all [--json] [--out FILE]`: the table on stdout (or the result as JSON), the result in FILE. */
export async function runBenchAll(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      'storage-bytes': { type: 'string' },
      'produce-seconds': { type: 'string' },
      'idle-partitions': { type: 'string' },
      'idle-seconds': { type: 'string' },
      'kafka-records': { type: 'string' },
    },
  });
  const suite = await benchAll({
    storageBytes: integerFlag('storage-bytes', values['storage-bytes'], 256_000_000, 1_000_000, 2 ** 40),
    produceSeconds: integerFlag('produce-seconds', values['produce-seconds'], 15, 1, 3600),
    idlePartitions: integerFlag('idle-partitions', values['idle-partitions'], TARGETS.idlePartitions, 1, 100_000),
    idleSeconds: integerFlag('idle-seconds', values['idle-seconds'], 10, 1, 3600),
    kafkaRecords: integerFlag('kafka-records', values['kafka-records'], 1_000_000, 1, 100_000_000),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(suite, null, 2)}\n`);
  if (values.json) io.stdout(`${JSON.stringify(suite)}\n`);
  else io.stdout(`${formatTable(suite.rows)}\n\n${suite.machine}; ${suite.seconds} s${values.out === undefined ? '' : `; results in ${values.out}`}\n`);
  if (Object.keys(suite.errors).length > 0) throw new Error(`benchmarks failed: ${Object.keys(suite.errors).join(', ')}`);
}
