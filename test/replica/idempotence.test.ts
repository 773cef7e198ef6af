// Idempotent producers at the partition (KIP-98): the leader drops retries and answers the
// original offsets, also while the original is still being written and, for acks=all, only
// once the high watermark passed it; followers learn the producers from what they replicate;
// truncation and a restart leave the state equal to the log.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { SimDisk } from '../../sim/disk.js';
import { slowDisk } from '../../sim/slow-disk.js';
import type { Disk } from '../../storage/disk.js';
import { NodeDisk } from '../../storage/node-disk.js';
import { PartitionLog } from '../../storage/partition-log.js';
import { buildBatch } from '../../storage/record-batch.js';
import type { PartitionState } from '../../src/controller/image.js';
import { Partition } from '../../src/replica/partition.js';
import { fetchOnce } from '../helpers/replica.js';
import { readAll, valuesOf } from '../helpers/log.js';

const DAY = 86_400_000;
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function state(overrides: Partial<PartitionState> = {}): PartitionState {
  return { topicId: 'T', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0, ...overrides };
}

/** An idempotent producer's batch of `count` records named `${tag}-${i}`. */
function batch(tag: string, count: number, producerId: number, baseSequence: number, options: { producerEpoch?: number; timestampMs?: number } = {}): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${tag}-${i}`), timestampMs: options.timestampMs ?? 1_700_000_000_000 }));
  return buildBatch(records, { producerId, producerEpoch: options.producerEpoch ?? 0, baseSequence });
}

interface Cluster {
  clock: VirtualClock;
  disk: SimDisk;
  open: (broker: number, s: PartitionState, options?: { disk?: Disk; segmentBytesMax?: number }) => Promise<Partition>;
}

function cluster(): Cluster {
  const disk = new SimDisk();
  const clock = new VirtualClock();
  return {
    clock,
    disk,
    open: async (broker, s, options = {}) => {
      const log = await PartitionLog.open({ disk: options.disk ?? disk, dir: `b${broker}/T-0`, clock, config: { flushIntervalMs: 0, ...(options.segmentBytesMax === undefined ? {} : { segmentBytesMax: options.segmentBytesMax }) } });
      return Partition.open(broker, log, s, clock, { replicaLagTimeMaxMs: 10_000, producerIdExpirationMs: DAY }, 0);
    },
  };
}

void t.test('a retried batch is answered with the original offsets and not written again', async (t) => {
  const { open } = cluster();
  const leader = await open(1, state({ replicas: [1], isr: [1] }));
  await leader.appendAsLeader(batch('plain', 2, -1, -1), 1, 1, 1000);
  const first = await leader.appendAsLeader(batch('a', 3, 7, 0), 1, 1, 1000);
  t.same([first.baseOffset, first.lastOffset, first.recordCount], [2, 4, 3]);
  const again = await leader.appendAsLeader(batch('a', 3, 7, 0), -1, 1, 1000);
  t.same(again, first, 'the same answer, acks=all included');
  t.equal(leader.log.logEndOffset, 5, 'nothing written');
  await t.rejects(leader.appendAsLeader(batch('gap', 1, 7, 4), 1, 1, 1000), { code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
  await t.rejects(leader.appendAsLeader(batch('new', 1, 8, 3), 1, 1, 1000), { code: 'UNKNOWN_PRODUCER_ID' });
  await t.rejects(leader.appendAsLeader(batch('zombie', 1, 7, 3, { producerEpoch: -1 }), 1, 1, 1000), { code: 'INVALID_REQUEST' });
  t.equal(leader.log.logEndOffset, 5, 'refusals write nothing');
  const next = await leader.appendAsLeader(batch('b', 1, 7, 3), 1, 1, 1000);
  t.equal(next.baseOffset, 5);
  const bumped = await leader.appendAsLeader(batch('c', 1, 7, 0, { producerEpoch: 1 }), 1, 1, 1000);
  t.equal(bumped.baseOffset, 6, 'a new epoch starts at sequence 0');
  await t.rejects(leader.appendAsLeader(batch('b', 1, 7, 3), 1, 1, 1000), { code: 'INVALID_PRODUCER_EPOCH' }, 'the old epoch is fenced, its retries too');
  t.same(valuesOf(await readAll(leader.log)), ['plain-0', 'plain-1', 'a-0', 'a-1', 'a-2', 'b-0', 'c-0']);
});

void t.test('a retry arriving while the original is written waits for it and gets its offsets', async (t) => {
  const clock = new VirtualClock();
  const inner = new SimDisk();
  let syncDelayMs = 0;
  const disk = slowDisk(inner, { syncDelayMs: () => syncDelayMs, writeDelayMs: () => 0, after: (ms, run) => { clock.setTimer(ms, run); }, alive: () => true });
  const log = await PartitionLog.open({ disk, dir: 'T-0', clock, config: { flushIntervalMs: 0 } });
  const leader = await Partition.open(1, log, state({ replicas: [1], isr: [1] }), clock, { replicaLagTimeMaxMs: 10_000 }, 0);
  syncDelayMs = 100;
  const answers: number[] = [];
  const original = leader.appendAsLeader(batch('a', 2, 1, 0), 1, 1, 1000).then((r) => { answers.push(r.baseOffset); return r; });
  const retry = leader.appendAsLeader(batch('a', 2, 1, 0), 1, 1, 1000).then((r) => { answers.push(r.baseOffset); return r; });
  const following = leader.appendAsLeader(batch('b', 1, 1, 2), 1, 1, 1000);
  await flush();
  t.same(answers, [], 'both wait for the write');
  t.equal(leader.producerState.pendingCount, 2, 'the original and the next batch are reserved');
  clock.advance(100);
  await flush();
  clock.advance(100);
  t.same(await retry, await original, 'the retry gets the original answer');
  t.equal((await following).baseOffset, 2);
  t.same(valuesOf(await readAll(log)), ['a-0', 'a-1', 'b-0'], 'written once');
  t.equal(leader.producerState.pendingCount, 0);
});

void t.test('an acks=all retry is answered only once the high watermark passed the original', async (t) => {
  const { open } = cluster();
  const leader = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const follower = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  const done = { original: false, retry: false };
  const original = leader.appendAsLeader(batch('a', 2, 3, 0), -1, 2, 5000).then((r) => { done.original = true; return r; });
  await flush();
  const retry = leader.appendAsLeader(batch('a', 2, 3, 0), -1, 2, 5000).then((r) => { done.retry = true; return r; });
  const acksOne = await leader.appendAsLeader(batch('a', 2, 3, 0), 1, 2, 5000);
  t.equal(acksOne.baseOffset, 0, 'acks=1 answers the retry once the original is written');
  await flush();
  t.same(done, { original: false, retry: false }, 'the follower has not confirmed');
  await fetchOnce(leader, follower, 2);
  await fetchOnce(leader, follower, 2);
  t.same(await retry, await original);
  t.equal(leader.highWatermark, 2);
  t.equal(leader.log.logEndOffset, 2);
});

void t.test('followers learn producers from what they replicate, so a new leader drops retries too', async (t) => {
  const { open } = cluster();
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  const first = await b1.appendAsLeader(batch('a', 2, 5, 0), 1, 1, 1000);
  const second = await b1.appendAsLeader(batch('b', 2, 5, 2), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  t.same(b2.producerState.entry(5)?.batches.map((b) => [b.firstSeq, b.firstOffset]), [[0, 0], [2, 2]]);
  const epoch1 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 });
  await b2.update(epoch1);
  await b1.update(epoch1);
  t.same(await b2.appendAsLeader(batch('b', 2, 5, 2), 1, 1, 1000), second, 'the retry of the last batch');
  t.same(await b2.appendAsLeader(batch('a', 2, 5, 0), 1, 1, 1000), first, 'an earlier one in the window');
  await t.rejects(b2.appendAsLeader(batch('c', 1, 5, 5), 1, 1, 1000), { code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
  t.equal((await b2.appendAsLeader(batch('c', 1, 5, 4), 1, 1, 1000)).baseOffset, 4);
  await fetchOnce(b2, b1, 1);
  t.same(b1.producerState.entry(5), b2.producerState.entry(5), 'the old leader follows the same state');
});

void t.test('a truncated batch is forgotten: its retry is written at the new leader', async (t) => {
  const { open } = cluster();
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  await b1.appendAsLeader(batch('a', 2, 9, 0), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  // Acknowledged with acks=1 by broker 1 only; broker 2 takes over without it.
  await b1.appendAsLeader(batch('lost', 2, 9, 2), 1, 1, 1000);
  const epoch1 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 });
  await b2.update(epoch1);
  await b1.update(epoch1);
  // The producer retries it at broker 2, where it is new.
  t.equal((await b2.appendAsLeader(batch('lost', 2, 9, 2), 1, 1, 1000)).baseOffset, 2);
  t.match(await fetchOnce(b2, b1, 1), { kind: 'diverging' });
  t.equal(b1.log.logEndOffset, 2, 'broker 1 cut its copy');
  t.same(b1.producerState.entry(9)?.batches.map((b) => b.lastOffset), [1], 'and its state with it');
  await fetchOnce(b2, b1, 1);
  t.same(b1.producerState.entry(9), b2.producerState.entry(9));
  t.same(valuesOf(await readAll(b1.log)), ['a-0', 'a-1', 'lost-0', 'lost-1'], 'once');
});

void t.test('a cut that takes every cached batch of a producer reads the log back', async (t) => {
  const { open } = cluster();
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  for (let i = 0; i < 6; i += 1) await b1.appendAsLeader(batch(`a${i}`, 1, 4, i), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  // Five more that only broker 1 has: its cached window is all above the cut.
  for (let i = 6; i < 11; i += 1) await b1.appendAsLeader(batch(`x${i}`, 1, 4, i), 1, 1, 1000);
  const epoch1 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 });
  await b2.update(epoch1);
  await b1.update(epoch1);
  await fetchOnce(b2, b1, 1);
  t.equal(b1.log.logEndOffset, 6);
  t.same(b1.producerState.entry(4)?.batches.map((b) => b.firstSeq), [1, 2, 3, 4, 5], 'rebuilt from the log: the last five below the cut');
  t.same(b1.producerState.entry(4), b2.producerState.entry(4));
});

void t.test('a restart rebuilds the state from the log on disk (sim disk and file system)', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'driftwood-idempotence-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  for (const [name, disk] of [['sim', new SimDisk()], ['node', new NodeDisk(directory)]] as const) {
    const { open } = cluster();
    const leader = await open(1, state({ replicas: [1], isr: [1] }), { disk, segmentBytesMax: 1024 });
    const answers = [];
    for (let i = 0; i < 20; i += 1) answers.push(await leader.appendAsLeader(batch(`r${i}`, 3, 11, i * 3), 1, 1, 1000));
    await leader.appendAsLeader(batch('other', 1, 12, 0), 1, 1, 1000);
    t.ok(leader.log.segmentInfos().length > 2, `${name}: several segments`);
    leader.close();
    await leader.log.close();
    const restarted = await open(1, state({ replicas: [1], isr: [1], leaderEpoch: 1, partitionEpoch: 1 }), { disk, segmentBytesMax: 1024 });
    t.same(restarted.producerState.entry(11), leader.producerState.entry(11), `${name}: the same state`);
    t.same(await restarted.appendAsLeader(batch('r19', 3, 11, 57), 1, 1, 1000), answers[19], `${name}: a retry after the restart is dropped`);
    t.equal((await restarted.appendAsLeader(batch('r20', 3, 11, 60), 1, 1, 1000)).baseOffset, 61, `${name}: the next batch follows`);
    t.equal(restarted.producerState.producerCount, 2);
    restarted.close();
    await restarted.log.close();
  }
});

/** A disk that counts the bytes read from each file. */
function countingDisk(inner: Disk, reads: Map<string, number>): Disk {
  return {
    ...inner,
    open: async (path, options) => {
      const file = await inner.open(path, options);
      return {
        get sizeBytes() { return file.sizeBytes; },
        write: (position, chunks) => file.write(position, chunks),
        read: (position, length) => {
          reads.set(path, (reads.get(path) ?? 0) + length);
          return file.read(position, length);
        },
        sync: () => file.sync(),
        truncate: (sizeBytes) => file.truncate(sizeBytes),
        close: () => file.close(),
      };
    },
    list: (dir) => inner.list(dir),
    mkdir: (dir) => inner.mkdir(dir),
    rename: (from, to) => inner.rename(from, to),
    remove: (path) => inner.remove(path),
    removeDir: (dir) => inner.removeDir(dir),
    syncDir: (dir) => inner.syncDir(dir),
    exists: (path) => inner.exists(path),
  };
}

void t.test('the rebuild reads only segments that may hold unexpired producers; expired ones are forgotten', async (t) => {
  const { open, clock, disk } = cluster();
  const reads = new Map<string, number>();
  const counting = countingDisk(disk, reads);
  const start = clock.nowMs();
  const leader = await open(1, state({ replicas: [1], isr: [1] }), { disk: counting, segmentBytesMax: 1024 });
  for (let i = 0; i < 30; i += 1) await leader.appendAsLeader(batch(`old${i}`, 3, 1, i * 3, { timestampMs: start }), 1, 1, 1000);
  await leader.log.roll();
  clock.advance(DAY / 2);
  for (let i = 0; i < 3; i += 1) await leader.appendAsLeader(batch(`new${i}`, 3, 2, i * 3, { timestampMs: clock.nowMs() }), 1, 1, 1000);
  const segments = leader.log.segmentInfos();
  t.ok(segments.length >= 3, 'producer 1 fills the first segments');
  clock.advance(DAY / 2 + 1);
  reads.clear();
  await leader.rebuildProducerState();
  t.equal(leader.producerState.entry(1), undefined, 'producer 1 was silent for more than a day');
  t.ok(leader.producerState.entry(2) !== undefined, 'producer 2 was not');
  const readPaths = [...reads.keys()];
  t.ok(readPaths.length > 0 && readPaths.every((path) => path.endsWith(`${String(segments.at(-1)?.baseOffset ?? 0).padStart(20, '0')}.log`)), `only the newest segment was read: ${readPaths.join(', ')}`);
  await t.rejects(leader.appendAsLeader(batch('old30', 3, 1, 90), 1, 1, 1000), { code: 'UNKNOWN_PRODUCER_ID' }, 'a forgotten producer must start again at 0');
});

void t.test('a write the log refuses at a leader change leaves the state before the new epoch judges the next batch', async (t) => {
  const clock = new VirtualClock();
  let syncDelayMs = 0;
  const disk = slowDisk(new SimDisk(), { syncDelayMs: () => syncDelayMs, writeDelayMs: () => 0, after: (ms, run) => { clock.setTimer(ms, run); }, alive: () => true });
  const log = await PartitionLog.open({ disk, dir: 'T-0', clock, config: { flushIntervalMs: 0 } });
  const leader = await Partition.open(1, log, state(), clock, { replicaLagTimeMaxMs: 10_000 }, 0);
  syncDelayMs = 100;
  const slow = leader.appendAsLeader(batch('plain', 1, -1, -1), 1, 1, 1000);
  await flush();
  syncDelayMs = 0; // only that write's sync is slow
  // Queued behind the slow write, in epoch 0.
  const stale = leader.appendAsLeader(batch('a', 1, 6, 0), 1, 1, 1000);
  await flush();
  const staleRetry = leader.appendAsLeader(batch('a', 1, 6, 0), 1, 1, 1000);
  await flush();
  t.equal(leader.producerState.pendingCount, 1, 'the retry waits on the original, reserving nothing');
  // Deposed and elected again while it waits: the new epoch starts before its turn, so the log refuses it.
  await leader.update(state({ leader: 2, leaderEpoch: 1, partitionEpoch: 1 }));
  const promoted = leader.update(state({ leader: 1, leaderEpoch: 2, partitionEpoch: 2 }));
  const next = leader.appendAsLeader(batch('b', 1, 6, 1), 1, 1, 1000);
  await flush();
  clock.advance(100);
  await slow;
  await promoted;
  await t.rejects(stale, { code: 'FENCED_LEADER_EPOCH' });
  await t.rejects(staleRetry, { code: 'FENCED_LEADER_EPOCH' }, 'a retry of a refused write gets its refusal');
  await t.rejects(next, { code: 'UNKNOWN_PRODUCER_ID' }, 'judged after the refused batch left the state, not against it');
  t.same(valuesOf(await readAll(log)), ['plain-0'], 'no sequence gap in the log');
  t.equal(leader.producerState.pendingCount, 0);
});
