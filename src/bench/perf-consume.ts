// `driftwood bench consume`: kafka-consumer-perf-test for driftwood. A Consumer of the client
// library reads N records of a topic from the beginning (all partitions assigned, or as a
// member of a group); records/s, MB/s and the time to the first record. A local cluster is
// filled by the produce benchmark first, and only the reading is timed.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Consumer } from '../client/consumer.js';
import { every, ProgressWindow, round, throwIfAborted, withCluster, type ClusterTarget, type RunContext } from './perf-common.js';
import { produceTo } from './perf-produce.js';

export interface PerfConsumeOptions extends ClusterTarget {
  readonly topic: string;
  readonly records: number;
  /** Subscribe as a member of this group (which starts at its committed offsets); absent: assign every partition. */
  readonly groupId?: string;
  /** The run fails when no record comes for this long (default 30000). */
  readonly idleTimeoutMs?: number;
  /** Size of the records a local cluster is filled with (default 100). */
  readonly fillRecordBytes?: number;
}

export interface PerfConsumeResult {
  recordsPerSec: number;
  mbPerSec: number;
  records: number;
  /** From the first poll to the first record. */
  timeToFirstRecordMs: number;
}

/** How long one poll waits, so that an interrupt or the idle timeout is noticed within it. */
const POLL_MS = 100;

export async function benchPerfConsume(options: PerfConsumeOptions, context: RunContext = {}): Promise<PerfConsumeResult> {
  assert.ok(options.topic.length > 0, 'a topic is named');
  assert.ok(Number.isSafeInteger(options.records) && options.records >= 1, 'records is a positive integer');
  const local = options.bootstrap === undefined;
  return withCluster(options, options.topic, context, async (bootstrap, partitions) => {
    if (local) {
      context.progress?.(`filling ${options.topic} with ${options.records} records`);
      const filled = await produceTo(bootstrap, { topic: options.topic, records: options.records, recordBytes: options.fillRecordBytes ?? 100, acks: 'all', lingerMs: 5 }, { ...context, progress: () => undefined });
      if (filled.errors > 0) throw new Error(`benchmark: ${filled.errors} records of the fill failed`);
    }
    return consumeFrom(bootstrap, partitions, options, context);
  });
}

async function consumeFrom(bootstrap: readonly string[], partitions: number, options: PerfConsumeOptions, context: RunContext): Promise<PerfConsumeResult> {
  const consumer = new Consumer({ bootstrap, clientId: 'driftwood-bench-consumer', autoOffsetReset: 'earliest', ...(options.groupId === undefined ? {} : { groupId: options.groupId }) });
  const window = new ProgressWindow();
  let records = 0;
  let bytes = 0;
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => context.progress?.(window.line(records, 'read')));
  try {
    if (options.groupId === undefined) {
      const all = Array.from({ length: partitions }, (_, partition) => ({ topic: options.topic, partition }));
      consumer.assign(all);
      await consumer.seekToBeginning(all);
    } else {
      consumer.subscribe([options.topic]);
    }
    const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    const startedMs = performance.now();
    let firstMs: number | null = null;
    let lastRecordMs = startedMs;
    while (records < options.records) {
      throwIfAborted(context.signal);
      const batch = await consumer.poll(POLL_MS);
      const nowMs = performance.now();
      if (batch.length === 0 && nowMs - lastRecordMs > idleTimeoutMs) {
        throw new Error(`benchmark: ${records} of ${options.records} records read, then none for ${idleTimeoutMs} ms`);
      }
      if (batch.length > 0) {
        firstMs ??= nowMs;
        lastRecordMs = nowMs;
      }
      for (const record of batch.slice(0, options.records - records)) {
        const size = (record.value?.length ?? 0) + (record.key?.length ?? 0);
        bytes += size;
        records += 1;
        window.add(size);
      }
    }
    assert.equal(records, options.records, 'exactly the records asked for are counted');
    assert.ok(firstMs !== null, 'a record was read');
    const seconds = Math.max(1e-6, (lastRecordMs - startedMs) / 1000);
    return {
      recordsPerSec: round(records / seconds, 1),
      mbPerSec: round(bytes / seconds / 1e6, 2),
      records,
      timeToFirstRecordMs: round(firstMs - startedMs, 3),
    };
  } finally {
    stopProgress();
    // The figures are taken; a failed commit or leave at close does not change them.
    await consumer.close().catch(() => undefined);
  }
}
