// `driftwood bench e2e`: end-to-end latency in the OpenMessaging benchmark's sense. A Producer
// sends at a fixed rate for a fixed time while a Consumer of the same process reads the topic
// from its end; each record carries its send time, and the latency is the time the consumer
// got it minus that. One process, one monotonic clock (performance.now), so no clock skew.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Consumer } from '../client/consumer.js';
import { Producer, type Acks } from '../client/producer.js';
import type { ConsumerRecord } from '../client/fetcher.js';
import { every, latencyHistogram, latencySummaryMs, Pacer, ProgressWindow, recordMs, round, sleep, throwIfAborted, withCluster, type ClusterTarget, type LatencySummaryMs, type RunContext } from './perf-common.js';

export interface PerfE2eOptions extends ClusterTarget {
  readonly topic: string;
  readonly throughputRecordsPerSec: number;
  readonly durationSeconds: number;
  /** At least E2E_RECORD_BYTES_MIN: the send time, a sequence number and the run's id (default 100). */
  readonly recordBytes?: number;
  readonly acks?: Acks;
  /** The producer's lingerMs (default 1, as the OpenMessaging Kafka driver sets). */
  readonly lingerMs?: number;
  /** How long after the last send records may still arrive before they count as lost (default 5000). */
  readonly graceMs?: number;
}

export interface PerfE2eResult {
  /** Records of this run the consumer read (each once). */
  records: number;
  recordsPerSec: number;
  latencyMs: LatencySummaryMs;
  /** Records sent (send() called) that the consumer did not read within the grace period. */
  lost: number;
}

/** Bytes 0-7: send time (float64 ms); 8-11: sequence number; 12-15: run id. */
export const E2E_RECORD_BYTES_MIN = 16;
/** Records one run may send, so the seen-bitmap stays bounded (100 MB). */
export const E2E_RECORDS_MAX = 100_000_000;
const POLL_MS = 100;
const SENDS_IN_FLIGHT_MAX = 100_000;
const SENDS_PER_YIELD = 100;

export async function benchPerfE2e(options: PerfE2eOptions, context: RunContext = {}): Promise<PerfE2eResult> {
  assert.ok(options.topic.length > 0, 'a topic is named');
  assert.ok(Number.isSafeInteger(options.throughputRecordsPerSec) && options.throughputRecordsPerSec >= 1, 'a rate is a positive integer');
  assert.ok(Number.isSafeInteger(options.durationSeconds) && options.durationSeconds >= 1, 'a duration is a positive integer');
  assert.ok(options.throughputRecordsPerSec * options.durationSeconds <= E2E_RECORDS_MAX, `a run sends at most ${E2E_RECORDS_MAX} records`);
  assert.ok((options.recordBytes ?? 100) >= E2E_RECORD_BYTES_MIN, `records carry at least ${E2E_RECORD_BYTES_MIN} bytes`);
  return withCluster(options, options.topic, context, (bootstrap, partitions) => run(bootstrap, partitions, options, context));
}

/** What the consumer side counts: each record of this run once, by its sequence number. */
class Receiver {
  readonly histogram = latencyHistogram();
  readonly window = new ProgressWindow();
  records = 0;
  private readonly seen: Uint8Array;

  constructor(private readonly runId: number, recordsMax: number) {
    this.seen = new Uint8Array(recordsMax);
  }

  take(batch: readonly ConsumerRecord[], nowMs: number): void {
    for (const record of batch) {
      const value = record.value;
      if (value === null || value.length < E2E_RECORD_BYTES_MIN || value.readUInt32LE(12) !== this.runId) continue;
      const sequence = value.readUInt32LE(8);
      assert.ok(sequence < this.seen.length, 'a sequence number of this run is one it sent');
      if (this.seen[sequence] === 1) continue;
      this.seen[sequence] = 1;
      this.records += 1;
      const latencyMs = nowMs - value.readDoubleLE(0);
      recordMs(this.histogram, latencyMs);
      this.window.add(value.length, latencyMs);
    }
  }
}

async function run(bootstrap: readonly string[], partitions: number, options: PerfE2eOptions, context: RunContext): Promise<PerfE2eResult> {
  const recordsMax = options.throughputRecordsPerSec * options.durationSeconds;
  const runId = randomBytes(4).readUInt32LE(0);
  const receiver = new Receiver(runId, recordsMax);
  const consumer = new Consumer({ bootstrap, clientId: 'driftwood-bench-e2e-consumer', autoOffsetReset: 'latest' });
  const producer = new Producer({ bootstrap, clientId: 'driftwood-bench-e2e-producer', acks: options.acks ?? 'all', lingerMs: options.lingerMs ?? 1 });
  const reader = { consuming: true };
  let reading: Promise<void> = Promise.resolve();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => context.progress?.(receiver.window.line(receiver.records, 'read end to end')));
  try {
    const all = Array.from({ length: partitions }, (_, partition) => ({ topic: options.topic, partition }));
    consumer.assign(all);
    await consumer.seekToEnd(all);
    // The positions are known before the first send, so no record of this run is skipped.
    for (const tp of all) await consumer.position(tp);
    reading = (async () => {
      while (reader.consuming) receiver.take(await consumer.poll(POLL_MS), performance.now());
    })();
    const startedMs = performance.now();
    const sent = await sendFor(producer, options, runId, recordsMax, context.signal);
    const sendingSeconds = (performance.now() - startedMs) / 1000;
    const graceEndMs = performance.now() + (options.graceMs ?? 5000);
    while (receiver.records < sent && performance.now() < graceEndMs) {
      throwIfAborted(context.signal);
      await sleep(POLL_MS, context.signal);
    }
    throwIfAborted(context.signal);
    assert.ok(receiver.records <= sent, 'no more records of this run are read than were sent');
    return { records: receiver.records, recordsPerSec: round(receiver.records / sendingSeconds, 1), latencyMs: latencySummaryMs(receiver.histogram), lost: sent - receiver.records };
  } finally {
    stopProgress();
    reader.consuming = false;
    await reading.catch(() => undefined);
    await producer.close(5000).catch(() => undefined);
    await consumer.close().catch(() => undefined);
  }
}

/** Sends at the rate for the duration; returns the records sent (send() called), once every send is answered. */
async function sendFor(producer: Producer, options: PerfE2eOptions, runId: number, recordsMax: number, signal?: AbortSignal): Promise<number> {
  const template = randomBytes(options.recordBytes ?? 100);
  template.writeUInt32LE(runId, 12);
  const pacer = new Pacer(options.throughputRecordsPerSec);
  const endMs = performance.now() + options.durationSeconds * 1000;
  const pending = new Set<Promise<unknown>>();
  let sent = 0;
  while (sent < recordsMax && performance.now() < endMs && signal?.aborted !== true) {
    await pacer.wait(sent, signal);
    if (pending.size >= SENDS_IN_FLIGHT_MAX) await Promise.race(pending);
    // A sender behind its rate never sleeps; answers and fetches need the event loop too.
    else if (sent % SENDS_PER_YIELD === SENDS_PER_YIELD - 1) await new Promise((resolve) => setImmediate(resolve));
    // Each record has its own bytes: the producer keeps them until their batch is built.
    const value = Buffer.from(template);
    value.writeUInt32LE(sent, 8);
    value.writeDoubleLE(performance.now(), 0);
    const answered: Promise<unknown> = producer.send({ topic: options.topic, value }).catch(() => undefined).finally(() => pending.delete(answered));
    pending.add(answered);
    sent += 1;
  }
  await Promise.all(pending);
  return sent;
}
