// What the client benchmarks (`bench produce|consume|e2e`) share: where the cluster is (one
// they are given, or a local one they start and remove), the topic they measure, latency
// histograms, pacing, progress lines and interruption.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { build, type Histogram } from 'hdr-histogram-js';
import { Admin } from '../client/admin.js';
import { isDriftwoodError } from '../../storage/errors.js';
import { startCluster } from './cluster.js';

/** Where a benchmark runs: a running cluster's nodes, or a local cluster it starts. */
export interface ClusterTarget {
  /** "host:port" of nodes of a running cluster; absent: start `nodes` local nodes in a temp dir. */
  readonly bootstrap?: readonly string[];
  /** Local nodes to start when no bootstrap is given (default 3). */
  readonly nodes?: number;
  /** Partitions of a topic the benchmark creates (default: the number of nodes). */
  readonly partitions?: number;
  /** Replication factor of a topic the benchmark creates (default min(3, nodes)). */
  readonly replicationFactor?: number;
}

/** What every benchmark run is handed besides its own options. */
export interface RunContext {
  /** Progress lines (not the result); the CLI writes them to stderr. */
  readonly progress?: (line: string) => void;
  /** How often a progress line is printed (default 5000). */
  readonly progressIntervalMs?: number;
  /** Stops the run early; cleanup still happens and the call rejects with BenchInterrupted. */
  readonly signal?: AbortSignal;
}

export interface LatencySummaryMs {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export class BenchInterrupted extends Error {
  override readonly name = 'BenchInterrupted';
  constructor() {
    super('benchmark interrupted');
  }
}

/** Nodes a local benchmark cluster may have. */
export const LOCAL_NODES_MAX = 7;
/** How long a created topic may take to have a full ISR and open logs. */
const TOPIC_READY_MS_MAX = 60_000;
/** Latencies are recorded in microseconds up to an hour. */
const LATENCY_US_MAX = 3_600_000_000;

/** A latency histogram in microseconds (the pure-JS build: no WebAssembly to load). */
export function latencyHistogram(): Histogram {
  return build({ useWebAssembly: false, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, autoResize: false });
}

/** Records one latency given in ms (fractions kept to the microsecond). */
export function recordMs(histogram: Histogram, latencyMs: number): void {
  assert.ok(Number.isFinite(latencyMs), 'a latency is a finite number');
  histogram.recordValue(Math.min(LATENCY_US_MAX, Math.max(0, Math.round(latencyMs * 1000))));
}

function us2ms(us: number): number {
  return Math.round(us) / 1000;
}

export function latencySummaryMs(histogram: Histogram): LatencySummaryMs {
  if (histogram.totalCount === 0) return { p50: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  // A percentile is the top of its bucket, which can pass the largest value recorded.
  const at = (percentile: number): number => us2ms(Math.min(histogram.maxValue, histogram.getValueAtPercentile(percentile)));
  const summary = { p50: at(50), p95: at(95), p99: at(99), p999: at(99.9), max: us2ms(histogram.maxValue) };
  assert.ok(summary.p50 <= summary.p95 && summary.p95 <= summary.p99, 'percentiles are ordered');
  assert.ok(summary.p99 <= summary.p999 && summary.p999 <= summary.max, 'percentiles are ordered up to the max');
  return summary;
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new BenchInterrupted();
}

/** Waits `ms`, or less when the signal aborts (the caller checks it after). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Paces sends to a rate the way kafka-producer-perf-test's throttler does: each record has a
 * due time (start + i / rate); a sender ahead of it sleeps. Sleeps shorter than a timer's
 * resolution are skipped, so the rate holds on average rather than record by record.
 */
export class Pacer {
  private readonly startedMs = performance.now();
  constructor(private readonly recordsPerSec: number) {
    assert.ok(recordsPerSec > 0 || recordsPerSec === -1, 'a rate is positive, or -1 for no limit');
  }

  async wait(sent: number, signal?: AbortSignal): Promise<void> {
    if (this.recordsPerSec === -1) return;
    const aheadMs = this.startedMs + (sent * 1000) / this.recordsPerSec - performance.now();
    if (aheadMs >= 1) await sleep(aheadMs, signal);
  }
}

/** A progress window: what was done since the last line. */
export class ProgressWindow {
  private records = 0;
  private bytes = 0;
  private latencyMsSum = 0;
  private latencyMsMax = 0;
  private startedMs = performance.now();

  add(bytes: number, latencyMs?: number): void {
    this.records += 1;
    this.bytes += bytes;
    if (latencyMs !== undefined) {
      this.latencyMsSum += latencyMs;
      this.latencyMsMax = Math.max(this.latencyMsMax, latencyMs);
    }
  }

  /** "N records, R records/s, M MB/s[, avg/max latency]" for the window, then a new window. */
  line(total: number, what: string): string {
    const seconds = Math.max(1e-3, (performance.now() - this.startedMs) / 1000);
    const latency = this.latencyMsMax > 0 ? `, latency avg ${(this.latencyMsSum / Math.max(1, this.records)).toFixed(1)} ms max ${this.latencyMsMax.toFixed(1)} ms` : '';
    const text = `${total} records ${what}, ${Math.round(this.records / seconds)} records/s, ${(this.bytes / seconds / 1e6).toFixed(1)} MB/s${latency}`;
    this.records = 0;
    this.bytes = 0;
    this.latencyMsSum = 0;
    this.latencyMsMax = 0;
    this.startedMs = performance.now();
    return text;
  }
}

/** Calls `tick` every interval until the returned stop is called. */
export function every(intervalMs: number, tick: () => void): () => void {
  assert.ok(intervalMs > 0, 'a progress interval is positive');
  const timer = setInterval(tick, intervalMs);
  return () => { clearInterval(timer); };
}

/** The topic exists with full ISRs and open logs; returns its partition count. */
async function topicReady(admin: Admin, topic: string, signal?: AbortSignal): Promise<number> {
  const deadlineMs = performance.now() + TOPIC_READY_MS_MAX;
  while (performance.now() < deadlineMs) {
    throwIfAborted(signal);
    const description = await admin.describeTopic(topic);
    if (description.partitions.every((p) => p.leader !== null && p.isr.length === p.replicas.length && p.highWatermark !== null)) return description.partitions.length;
    await sleep(100, signal);
  }
  throw new Error(`benchmark: topic ${topic} has no full ISR or open logs after ${TOPIC_READY_MS_MAX} ms`);
}

/**
 * The topic at the bootstrap nodes: used if it exists, else created when the target names
 * partitions or a replication factor (a benchmark must not create topics nobody asked for).
 */
async function ensureTopic(bootstrap: readonly string[], topic: string, target: ClusterTarget, signal?: AbortSignal): Promise<number> {
  const admin = new Admin({ bootstrap, apiTimeoutMs: 30_000 });
  try {
    try {
      await admin.describeTopic(topic);
    } catch (error) {
      if (!isDriftwoodError(error) || error.code !== 'UNKNOWN_TOPIC_OR_PARTITION') throw error;
      if (target.partitions === undefined && target.replicationFactor === undefined) {
        throw new Error(`benchmark: topic ${topic} does not exist (give --partitions or --replication-factor to create it)`);
      }
      const replicationFactor = target.replicationFactor ?? 1;
      await admin.createTopic({ name: topic, partitions: target.partitions ?? 1, replicationFactor, configs: { 'min.insync.replicas': Math.min(2, replicationFactor) } });
    }
    return await topicReady(admin, topic, signal);
  } finally {
    await admin.close();
  }
}

/** A cluster with the topic ready for `run`; a local one is removed after, whatever happens. */
export async function withCluster<T>(target: ClusterTarget, topic: string, context: RunContext, run: (bootstrap: readonly string[], partitions: number) => Promise<T>): Promise<T> {
  throwIfAborted(context.signal);
  if (target.bootstrap !== undefined) {
    assert.ok(target.bootstrap.length > 0, 'a bootstrap list names a node');
    const partitions = await ensureTopic(target.bootstrap, topic, target, context.signal);
    return run(target.bootstrap, partitions);
  }
  const nodes = target.nodes ?? 3;
  assert.ok(Number.isSafeInteger(nodes) && nodes >= 1 && nodes <= LOCAL_NODES_MAX, `a local cluster has 1 to ${LOCAL_NODES_MAX} nodes`);
  context.progress?.(`starting ${nodes} local node(s)`);
  const cluster = await startCluster(nodes);
  try {
    const bootstrap = cluster.nodes.map((node) => `127.0.0.1:${node.port}`);
    const partitions = await ensureTopic(bootstrap, topic, { partitions: target.partitions ?? nodes, replicationFactor: target.replicationFactor ?? Math.min(3, nodes) }, context.signal);
    return await run(bootstrap, partitions);
  } finally {
    await cluster.stop();
  }
}
