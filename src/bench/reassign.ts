// `driftwood bench reassign`: how fast a reassignment copies a partition to a new replica,
// with and without the throttle, and what a producer writing to that partition sees meanwhile
// (issue 10). A fresh four-node cluster on loopback; one partition (RF 2) is filled with
// `bytes` of records; then it is moved to three replicas (the third copies everything from the
// leader) without a throttle, shrunk back, and moved again with `throttleBytesPerSec`. A
// steady idempotent acks=all producer writes small records to the same partition throughout,
// and its latencies are kept per phase: before the moves, during the unthrottled copy, during
// the throttled one. The copy rate is the leader's log bytes over the time from the request
// to the move's completion (the new replica in the ISR).
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Admin } from '../client/admin.js';
import { Producer } from '../client/producer.js';
import { machine, startCluster } from './cluster.js';
import { latencyHistogram, latencySummaryMs, recordMs, round, type LatencySummaryMs } from './perf-common.js';

export interface ReassignBenchOptions {
  /** Bytes of records the partition holds before it moves. */
  readonly bytes: number;
  readonly throttleBytesPerSec: number;
  /** The steady producer's rate during the moves. */
  readonly recordsPerSec: number;
  readonly progress: (line: string) => void;
}

export interface CopyFigures {
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSec: number;
  /** The steady producer's latencies while this copy ran. */
  readonly producerLatencyMs: LatencySummaryMs;
}

export interface ReassignBenchResult {
  readonly partitionBytes: number;
  readonly unthrottled: CopyFigures;
  readonly throttled: CopyFigures & { readonly throttleBytesPerSec: number };
  /** The steady producer's latencies before any move. */
  readonly baselineProducerLatencyMs: LatencySummaryMs;
  readonly producerErrors: number;
  readonly machine: string;
}

const TOPIC = 'reassign-bench';
const FILL_RECORD_BYTES = 1024;
const STEADY_RECORD_BYTES = 100;
const BASELINE_MS = 3000;
const POLL_MS = 50;
const TICK_MS = 10;
const MOVE_MS_MAX = 600_000;
/** How long the new replica may take to show the partition in its metrics after the move completed. */
const METRICS_WAIT_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function benchReassign(options: ReassignBenchOptions): Promise<ReassignBenchResult> {
  assert.ok(options.bytes > 0 && options.throttleBytesPerSec >= 1024 && options.recordsPerSec > 0);
  options.progress('starting 4 nodes');
  const cluster = await startCluster(4);
  const bootstrap = cluster.nodes.map((node) => `127.0.0.1:${node.port}`);
  const admin = new Admin({ bootstrap, apiTimeoutMs: 30_000 });
  try {
    await admin.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 2, configs: { 'min.insync.replicas': 1, 'segment.bytes': 64 * 1024 * 1024 } });
    const start = await waitFor(admin, 'the partition to serve', async () => {
      const p = (await admin.describeTopic(TOPIC)).partitions[0];
      return p !== undefined && p.highWatermark !== null && p.isr.length === 2 ? p.replicas : undefined;
    });
    const spare = [1, 2, 3, 4].find((id) => !start.includes(id));
    assert.ok(spare !== undefined);
    await fill(bootstrap, options);

    const steady = startSteadyProducer(bootstrap, options.recordsPerSec);
    try {
      options.progress(`baseline: the steady producer alone for ${BASELINE_MS} ms`);
      await sleep(BASELINE_MS);
      const baselineProducerLatencyMs = steady.phase();
      options.progress(`moving to [${[...start, spare].join(',')}] without a throttle`);
      const sparePort = cluster.nodes.find((node) => node.id === spare)?.port ?? 0;
      const unthrottledCopy = await move(admin, [...start, spare], -1, options, sparePort);
      const unthrottled = { ...unthrottledCopy, producerLatencyMs: steady.phase() };
      await move(admin, start, -1, options, null); // back to two replicas: the spare deletes its copy
      options.progress(`moving to [${[...start, spare].join(',')}] at ${options.throttleBytesPerSec} bytes/s`);
      steady.phase();
      const throttledCopy = await move(admin, [...start, spare], options.throttleBytesPerSec, options, sparePort);
      const throttled = { ...throttledCopy, producerLatencyMs: steady.phase(), throttleBytesPerSec: options.throttleBytesPerSec };
      return { partitionBytes: unthrottled.bytes, unthrottled, throttled, baselineProducerLatencyMs, producerErrors: steady.errors(), machine: machine() };
    } finally {
      await steady.stop();
    }
  } finally {
    await admin.close().catch(() => undefined);
    await cluster.stop();
  }
}

async function waitFor<T>(admin: Admin, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + MOVE_MS_MAX;
  while (performance.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(POLL_MS);
  }
  throw new Error(`benchmark: timed out waiting for ${what}`);
}

async function fill(bootstrap: string[], options: ReassignBenchOptions): Promise<void> {
  const producer = new Producer({ bootstrap, acks: 1, lingerMs: 5 });
  const value = Buffer.alloc(FILL_RECORD_BYTES, 0x62);
  const records = Math.ceil(options.bytes / FILL_RECORD_BYTES);
  const startMs = performance.now();
  try {
    for (let sent = 0; sent < records; sent += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, records - sent) }, () => producer.send({ topic: TOPIC, partition: 0, value })));
      if (sent % 50_000 === 0) options.progress(`filling: ${sent} of ${records} records`);
    }
  } finally {
    await producer.close();
  }
  options.progress(`filled ${records} records of ${FILL_RECORD_BYTES} bytes in ${Math.round(performance.now() - startMs)} ms`);
}

/**
 * Reassigns partition 0 to `replicas` and waits for it to complete; the copy's size (the new
 * replica's log bytes when done, from its /metrics) and rate. `newReplicaPort` is null for a shrink.
 */
async function move(admin: Admin, replicas: readonly number[], throttleBytesPerSec: number, options: ReassignBenchOptions, newReplicaPort: number | null): Promise<{ bytes: number; seconds: number; mbPerSec: number }> {
  const startMs = performance.now();
  await admin.alterReassignments([{ topic: TOPIC, partition: 0, replicas }], { throttleBytesPerSec });
  let lastMs = startMs;
  await waitFor(admin, 'the move to complete', async () => {
    const listing = await admin.listReassignments();
    const moving = listing.partitions.find((p) => p.topic === TOPIC);
    if (performance.now() - lastMs >= 1000 && moving !== undefined) {
      lastMs = performance.now();
      const copied = moving.progress.filter((r) => r.role === 'adding').map((r) => r.bytesCopied ?? 0).join(',');
      options.progress(`  copied ${copied} of ${moving.leaderLogBytes ?? '?'} bytes`);
    }
    return moving === undefined ? true : undefined;
  });
  const seconds = (performance.now() - startMs) / 1000;
  const bytes = newReplicaPort === null ? 0 : await logBytesOn(newReplicaPort);
  return { bytes, seconds: round(seconds, 2), mbPerSec: round(bytes / 1e6 / seconds, 1) };
}

/** The benchmark partition's log bytes on the node at `port` (driftwood_partition_log_bytes), once it reports them. */
async function logBytesOn(port: number): Promise<number> {
  const deadline = performance.now() + METRICS_WAIT_MS;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('driftwood_partition_log_bytes{') && l.includes(`topic="${TOPIC}"`) && l.includes('partition="0"'));
    const bytes = Number(line?.split(' ').at(-1));
    if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
    if (performance.now() > deadline) throw new Error(`benchmark: the node on port ${port} does not report the moved partition's bytes: ${line ?? 'no line'}`);
    await sleep(POLL_MS);
  }
}

/** A producer sending small records at a steady rate; phase() returns the latencies since the last phase() and starts a new one. */
function startSteadyProducer(bootstrap: string[], recordsPerSec: number): { phase: () => LatencySummaryMs; errors: () => number; stop: () => Promise<void> } {
  const producer = new Producer({ bootstrap, acks: 'all', idempotent: true, lingerMs: 1 });
  const value = Buffer.alloc(STEADY_RECORD_BYTES, 0x61);
  let histogram = latencyHistogram();
  let errors = 0;
  const running = { on: true };
  const loop = (async () => {
    const startMs = performance.now();
    let sent = 0;
    while (running.on) {
      const due = Math.floor(((performance.now() - startMs) / 1000) * recordsPerSec);
      for (; sent < due; sent += 1) {
        const sentMs = performance.now();
        const into = histogram;
        producer.send({ topic: TOPIC, partition: 0, value }).then(() => { recordMs(into, performance.now() - sentMs); }, () => { errors += 1; });
      }
      await sleep(TICK_MS);
    }
  })();
  return {
    phase: () => {
      const summary = latencySummaryMs(histogram);
      histogram = latencyHistogram();
      return summary;
    },
    errors: () => errors,
    stop: async () => {
      running.on = false;
      await loop;
      await producer.close();
    },
  };
}

function latencyText(l: LatencySummaryMs): string {
  return `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`;
}

/** The result as the lines a person reads. */
export function formatReassignResult(r: ReassignBenchResult): string {
  return [
    `partition bytes copied   ${r.partitionBytes}`,
    `copy, no throttle        ${r.unthrottled.mbPerSec} MB/s (${r.unthrottled.seconds} s); producer ${latencyText(r.unthrottled.producerLatencyMs)}`,
    `copy, throttle ${r.throttled.throttleBytesPerSec} B/s  ${r.throttled.mbPerSec} MB/s (${r.throttled.seconds} s); producer ${latencyText(r.throttled.producerLatencyMs)}`,
    `producer before moves    ${latencyText(r.baselineProducerLatencyMs)}`,
    `producer errors          ${r.producerErrors}`,
    `machine                  ${r.machine}`,
  ].map((line) => `${line}\n`).join('');
}
