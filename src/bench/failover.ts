// `driftwood bench failover`: what a producer sees when a partition leader dies. A fresh
// three-node cluster on loopback (RF 3, min.insync.replicas 2); an idempotent acks=all
// Producer sends a steady stream with every send's outcome recorded; after a warm-up the
// process leading partition 0 gets SIGKILL; the stream goes on, stops, and a Consumer reads
// everything back. The unavailability window is from the kill to the first acknowledgement
// of partition 0 after it; an acknowledged record is lost unless it is read back at the
// offset it was acknowledged with.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Admin } from '../client/admin.js';
import { Consumer } from '../client/consumer.js';
import { Producer } from '../client/producer.js';
import { isDriftwoodError } from '../../storage/errors.js';
import { machine, startCluster } from './cluster.js';

export interface FailoverBenchOptions {
  /** Records sent per second, spread over the partitions. */
  readonly recordsPerSec: number;
  readonly partitions: number;
  readonly recordBytes: number;
  readonly warmupSeconds: number;
  /** How long the stream goes on after the kill. */
  readonly afterKillSeconds: number;
  readonly progress: (line: string) => void;
}

export interface FailoverBenchResult {
  /**
   * The produce unavailability: the longest time partition 0 went without an acknowledgement,
   * among the gaps that end after the kill; null when none came after it. (Kill to the first
   * acknowledgement after it was 0 ms in some runs: an answer already on its way when the
   * leader died arrived just after the kill.)
   */
  windowMs: number | null;
  /** The longest time partition 0 went without an acknowledgement, from the first one to the end of the stream. */
  longestAckGapMs: number;
  acknowledged: number;
  /** Acknowledged records not read back at their acknowledged offset. */
  lost: number;
  /** Records read back more than once (at two offsets). */
  duplicates: number;
  /** Sends that were rejected (their records may or may not be in the log). */
  errors: number;
  sent: number;
  killedBroker: number;
  newLeader: number | null;
  recordsPerSec: number;
  partitions: number;
  errorCodes: Record<string, number>;
  machine: string;
}

interface SendOutcome {
  readonly partition: number;
  ackMs: number | null;
  offset: number | null;
}

interface BenchNode {
  readonly id: number;
  readonly address: string;
  readonly child: ChildProcess;
}

const TOPIC = 'failover';
const TICK_MS = 10;
const PROGRESS_INTERVAL_MS = 2000;
const STARTUP_MS_MAX = 60_000;
/** How long the producer may take to answer what is still buffered when the stream stops. */
const DRAIN_MS_MAX = 60_000;
const READ_BACK_MS_MAX = 60_000;
/** Sends one benchmark keeps at most (a bound on its memory). */
const SENDS_MAX = 2_000_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `size` nodes (cluster.ts's startCluster). stop() kills them and removes their temp
 * dir; so does SIGINT or SIGTERM of this process, which would otherwise leave them running.
 */
async function startNodes(size: number): Promise<{ nodes: BenchNode[]; stop: () => Promise<void> }> {
  const cluster = await startCluster(size);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await cluster.stop();
    })();
    return stopping;
  };
  function onSignal(signal: NodeJS.Signals): void {
    void stop().finally(() => { process.kill(process.pid, signal); });
  }
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { nodes: cluster.nodes.map((node) => ({ id: node.id, address: `127.0.0.1:${node.port}`, child: node.child })), stop };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + STARTUP_MS_MAX;
  while (performance.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`benchmark: timed out waiting for ${what}`);
}

async function createTopic(admin: Admin, options: FailoverBenchOptions, size: number): Promise<void> {
  await until('every broker to be alive', async () => {
    const cluster = await admin.describeCluster();
    return cluster.brokers.length === size && cluster.brokers.every((broker) => broker.state === 'alive') ? true : undefined;
  });
  await admin.createTopic({ name: TOPIC, partitions: options.partitions, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } });
  await until('every partition to have a full ISR and an open log', async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.leader !== null && p.isr.length === 3 && p.highWatermark !== null) ? true : undefined;
  });
}

/** A record's value: its sequence number in the first 8 bytes, padded to recordBytes. */
function valueFor(sequence: number, recordBytes: number): Buffer {
  const value = Buffer.alloc(Math.max(8, recordBytes), 0x61);
  value.writeBigUInt64BE(BigInt(sequence), 0);
  return value;
}

export async function benchFailover(options: FailoverBenchOptions): Promise<FailoverBenchResult> {
  assert.ok(options.recordsPerSec > 0 && options.partitions > 0);
  assert.ok(options.warmupSeconds > 0 && options.afterKillSeconds > 0);
  options.progress('starting 3 nodes');
  const { nodes, stop } = await startNodes(3);
  const admin = new Admin({ bootstrap: nodes.map((node) => node.address), apiTimeoutMs: 30_000 });
  try {
    await createTopic(admin, options, nodes.length);
    options.progress(`topic ${TOPIC}: ${options.partitions} partitions, RF 3, min.insync.replicas 2`);
    const run = await produceThroughKill(options, nodes, admin);
    const live = nodes.filter((node) => node.id !== run.killedBroker).map((node) => node.address);
    options.progress('reading everything back');
    const readBack = await readAll(live, options.partitions, admin);
    return summarize(options, run, readBack);
  } finally {
    await admin.close().catch(() => undefined);
    await stop();
  }
}

interface RunRecord {
  readonly sends: SendOutcome[];
  readonly errorCodes: Map<string, number>;
  readonly killMs: number;
  readonly endMs: number;
  readonly killedBroker: number;
  readonly newLeader: number | null;
}

async function produceThroughKill(options: FailoverBenchOptions, nodes: readonly BenchNode[], admin: Admin): Promise<RunRecord> {
  const producer = new Producer({ bootstrap: nodes.map((node) => node.address), acks: 'all', idempotent: true, lingerMs: 5 });
  const sends: SendOutcome[] = [];
  const errorCodes = new Map<string, number>();
  const totalMs = (options.warmupSeconds + options.afterKillSeconds) * 1000;
  const startMs = performance.now();
  let killMs = Infinity;
  let killedBroker = 0;
  const send = (): void => {
    assert.ok(sends.length < SENDS_MAX, 'the failover benchmark sends at most SENDS_MAX records');
    const sequence = sends.length;
    const outcome: SendOutcome = { partition: sequence % options.partitions, ackMs: null, offset: null };
    sends.push(outcome);
    producer.send({ topic: TOPIC, partition: outcome.partition, value: valueFor(sequence, options.recordBytes) }).then(
      (metadata) => { outcome.ackMs = performance.now(); outcome.offset = metadata.offset; },
      (error: unknown) => { const code = isDriftwoodError(error) ? error.code : 'UNKNOWN'; errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1); },
    );
  };
  let lastProgressMs = startMs;
  while (performance.now() - startMs < totalMs) {
    const dueRecords = Math.floor(((performance.now() - startMs) / 1000) * options.recordsPerSec);
    while (sends.length < dueRecords) send();
    if (killMs === Infinity && performance.now() - startMs >= options.warmupSeconds * 1000) {
      killedBroker = await killLeaderOfPartition0(nodes, admin);
      killMs = performance.now();
      options.progress(`killed broker ${killedBroker} (leader of partition 0) with SIGKILL`);
    }
    if (performance.now() - lastProgressMs >= PROGRESS_INTERVAL_MS) {
      lastProgressMs = performance.now();
      options.progress(progressLine(sends, errorCodes, startMs, killMs));
    }
    await sleep(TICK_MS);
  }
  const endMs = performance.now();
  options.progress(`stream stopped after ${sends.length} sends; waiting for the last answers`);
  await producer.close(DRAIN_MS_MAX);
  const newLeader = (await admin.describeTopic(TOPIC)).partitions.find((p) => p.partition === 0)?.leader ?? null;
  return { sends, errorCodes, killMs, endMs, killedBroker, newLeader };
}

function progressLine(sends: readonly SendOutcome[], errorCodes: ReadonlyMap<string, number>, startMs: number, killMs: number): string {
  const acked = sends.filter((s) => s.ackMs !== null);
  const p0AfterKill = acked.filter((s) => s.partition === 0 && (s.ackMs ?? 0) > killMs).length;
  const errors = [...errorCodes.values()].reduce((a, b) => a + b, 0);
  const kill = killMs === Infinity ? '' : `, partition 0 acked since the kill ${p0AfterKill}`;
  return `${((performance.now() - startMs) / 1000).toFixed(0)} s: sent ${sends.length}, acknowledged ${acked.length}, errors ${errors}${kill}`;
}

async function killLeaderOfPartition0(nodes: readonly BenchNode[], admin: Admin): Promise<number> {
  const leader = (await admin.describeTopic(TOPIC)).partitions.find((p) => p.partition === 0)?.leader ?? null;
  const node = nodes.find((n) => n.id === leader);
  assert.ok(node !== undefined, `partition 0 has a leader among the nodes started (got ${String(leader)})`);
  node.child.kill('SIGKILL');
  return node.id;
}

/** Each record read back, by partition and offset: its sequence number. */
type ReadBack = Map<number, Map<number, number>>;

async function readAll(bootstrap: readonly string[], partitions: number, admin: Admin): Promise<ReadBack> {
  const ends = await until('the high watermarks of the live replicas', async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.highWatermark !== null) ? new Map(topic.partitions.map((p) => [p.partition, p.highWatermark ?? 0])) : undefined;
  });
  const consumer = new Consumer({ bootstrap: [...bootstrap], autoOffsetReset: 'earliest', fetchMaxWaitMs: 100 });
  const read: ReadBack = new Map(Array.from({ length: partitions }, (_, p) => [p, new Map<number, number>()]));
  try {
    consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic: TOPIC, partition })));
    const deadline = performance.now() + READ_BACK_MS_MAX;
    const done = (): boolean => [...ends].every(([p, end]) => (read.get(p)?.size ?? 0) >= end);
    while (!done()) {
      if (performance.now() > deadline) throw new Error('benchmark: reading back the topic took longer than READ_BACK_MS_MAX');
      for (const record of await consumer.poll(500)) {
        if (record.value === null || record.value.length < 8) continue;
        read.get(record.partition)?.set(record.offset, Number(record.value.readBigUInt64BE(0)));
      }
    }
  } finally {
    await consumer.close();
  }
  return read;
}

function summarize(options: FailoverBenchOptions, run: RunRecord, read: ReadBack): FailoverBenchResult {
  const acknowledged = run.sends.filter((s) => s.ackMs !== null);
  let lost = 0;
  for (const [sequence, send] of run.sends.entries()) {
    if (send.ackMs === null || send.offset === null) continue;
    if (read.get(send.partition)?.get(send.offset) !== sequence) lost += 1;
  }
  const seen = new Set<number>();
  let duplicates = 0;
  for (const records of read.values()) {
    for (const sequence of records.values()) {
      if (seen.has(sequence)) duplicates += 1;
      seen.add(sequence);
    }
  }
  const p0Acks = acknowledged.filter((s) => s.partition === 0).map((s) => s.ackMs ?? 0).sort((a, b) => a - b);
  let windowMs: number | null = null;
  for (const [i, ms] of p0Acks.entries()) if (i > 0 && ms > run.killMs) windowMs = Math.max(windowMs ?? 0, ms - (p0Acks[i - 1] ?? ms));
  let longestAckGapMs = 0;
  // The stream's end counts as an edge too: a partition silent until the end had a gap that long.
  for (const [i, ms] of [...p0Acks, run.endMs].entries()) if (i > 0) longestAckGapMs = Math.max(longestAckGapMs, ms - (p0Acks[i - 1] ?? ms));
  const errors = [...run.errorCodes.values()].reduce((a, b) => a + b, 0);
  return {
    windowMs: windowMs === null ? null : Math.round(windowMs),
    longestAckGapMs: Math.round(longestAckGapMs),
    acknowledged: acknowledged.length,
    lost,
    duplicates,
    errors,
    sent: run.sends.length,
    killedBroker: run.killedBroker,
    newLeader: run.newLeader,
    recordsPerSec: options.recordsPerSec,
    partitions: options.partitions,
    errorCodes: Object.fromEntries(run.errorCodes),
    machine: machine(),
  };
}
