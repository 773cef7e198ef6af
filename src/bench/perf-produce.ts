// `driftwood bench produce`: kafka-producer-perf-test for driftwood. K Producer instances of
// the client library send N records of B bytes to a topic, as fast as they can or paced to a
// rate; the latency of each record is its send() call to its promise resolving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Producer, type Acks } from '../client/producer.js';
import { every, latencyHistogram, latencySummaryMs, Pacer, ProgressWindow, recordMs, round, throwIfAborted, withCluster, type ClusterTarget, type LatencySummaryMs, type RunContext } from './perf-common.js';

export interface PerfProduceOptions extends ClusterTarget {
  readonly topic: string;
  readonly records: number;
  readonly recordBytes: number;
  readonly acks?: Acks;
  /** The producers' batchBytesMax (client default 16384). */
  readonly batchBytesMax?: number;
  /** The producers' lingerMs (client default 5). */
  readonly lingerMs?: number;
  /** Producer instances sharing the records (default 1). */
  readonly producers?: number;
  /** Records per second over all producers; -1 (default): as fast as they go. */
  readonly throughputRecordsPerSec?: number;
}

export interface PerfProduceResult {
  recordsPerSec: number;
  mbPerSec: number;
  /** Records acknowledged. */
  records: number;
  /** Sends that rejected. */
  errors: number;
  latencyMs: LatencySummaryMs;
}

/** Records one producer has sent but not seen answered at most: bounds the promises held. */
const SENDS_IN_FLIGHT_MAX = 100_000;
/** Records sent between yields to the event loop, so answers and timers run. */
const SENDS_PER_YIELD = 1000;
export const PRODUCERS_MAX = 64;

export async function benchPerfProduce(options: PerfProduceOptions, context: RunContext = {}): Promise<PerfProduceResult> {
  checkOptions(options);
  return withCluster(options, options.topic, context, (bootstrap) => produceTo(bootstrap, options, context));
}

function checkOptions(options: PerfProduceOptions): void {
  assert.ok(options.topic.length > 0, 'a topic is named');
  assert.ok(Number.isSafeInteger(options.records) && options.records >= 1, 'records is a positive integer');
  assert.ok(Number.isSafeInteger(options.recordBytes) && options.recordBytes >= 0, 'recordBytes is a non-negative integer');
  const producers = options.producers ?? 1;
  assert.ok(Number.isSafeInteger(producers) && producers >= 1 && producers <= PRODUCERS_MAX, `producers is 1 to ${PRODUCERS_MAX}`);
}

/** Sends the records to a cluster whose topic exists; used by `bench consume` to fill a topic too. */
export async function produceTo(bootstrap: readonly string[], options: PerfProduceOptions, context: RunContext): Promise<PerfProduceResult> {
  checkOptions(options);
  const producerCount = options.producers ?? 1;
  // One payload for every record: the benchmark measures the client and brokers, not randomBytes.
  const value = randomBytes(options.recordBytes);
  const histogram = latencyHistogram();
  const window = new ProgressWindow();
  const totals = { acknowledged: 0, errors: 0 };
  const producers = Array.from({ length: producerCount }, (_, i) => new Producer({
    bootstrap,
    clientId: `driftwood-bench-${i}`,
    acks: options.acks ?? 'all',
    ...(options.batchBytesMax === undefined ? {} : { batchBytesMax: options.batchBytesMax }),
    ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
  }));
  const startedMs = performance.now();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => context.progress?.(window.line(totals.acknowledged, 'acknowledged')));
  try {
    const rate = options.throughputRecordsPerSec ?? -1;
    await Promise.all(producers.map((producer, i) => {
      // Producer i sends its share: records i, i + K, i + 2K, ...
      const share = Math.floor(options.records / producerCount) + (i < options.records % producerCount ? 1 : 0);
      const pacer = new Pacer(rate === -1 ? -1 : rate / producerCount);
      return sendShare(producer, share, pacer, (latencyMs) => {
        if (latencyMs === null) {
          totals.errors += 1;
          return;
        }
        totals.acknowledged += 1;
        recordMs(histogram, latencyMs);
        window.add(options.recordBytes, latencyMs);
      }, options.topic, value, context.signal);
    }));
  } finally {
    stopProgress();
    await Promise.all(producers.map((producer) => producer.close(5000).catch(() => undefined)));
  }
  throwIfAborted(context.signal);
  const seconds = (performance.now() - startedMs) / 1000;
  assert.equal(totals.acknowledged + totals.errors, options.records, 'every send was answered');
  return {
    recordsPerSec: round(totals.acknowledged / seconds, 1),
    mbPerSec: round((totals.acknowledged * options.recordBytes) / seconds / 1e6, 2),
    records: totals.acknowledged,
    errors: totals.errors,
    latencyMs: latencySummaryMs(histogram),
  };
}

/** One producer's records; `done` gets each record's latency in ms, or null when it failed. */
async function sendShare(producer: Producer, share: number, pacer: Pacer, done: (latencyMs: number | null) => void, topic: string, value: Buffer, signal?: AbortSignal): Promise<void> {
  let inFlight = 0;
  let room: (() => void) | null = null;
  const pending = new Set<Promise<void>>();
  for (let sent = 0; sent < share; sent += 1) {
    if (signal?.aborted === true) break;
    await pacer.wait(sent, signal);
    if (inFlight >= SENDS_IN_FLIGHT_MAX) await new Promise<void>((resolve) => { room = resolve; });
    else if (sent % SENDS_PER_YIELD === SENDS_PER_YIELD - 1) await new Promise((resolve) => setImmediate(resolve));
    const sentMs = performance.now();
    inFlight += 1;
    const answered = producer.send({ topic, value }).then(
      () => { done(performance.now() - sentMs); },
      () => { done(null); },
    ).finally(() => {
      inFlight -= 1;
      pending.delete(answered);
      const wake = room;
      room = null;
      wake?.();
    });
    pending.add(answered);
  }
  await Promise.all(pending);
}
