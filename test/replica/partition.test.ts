// A partition's leader and follower roles over simulated logs: the high watermark, acks=all,
// min.insync.replicas, leader epoch checks, ISR shrink and expand, and truncation where a
// follower's log forked (the KIP-101 / KIP-320 scenarios).
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { SimDisk } from '../../sim/disk.js';
import { slowDisk } from '../../sim/slow-disk.js';
import { PartitionLog } from '../../storage/partition-log.js';
import type { PartitionState } from '../../src/controller/image.js';
import { Partition } from '../../src/replica/partition.js';
import { fetchOnce } from '../helpers/replica.js';
import { isrChangeOutcome } from '../../src/replica/replica-manager.js';
import { DriftwoodError } from '../../storage/errors.js';
import { makeBatch, readAll, valuesOf } from '../helpers/log.js';

const config = { replicaLagTimeMaxMs: 10_000 };
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function state(overrides: Partial<PartitionState> = {}): PartitionState {
  return { topicId: 'T', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0, ...overrides };
}

function replicas(): { clock: VirtualClock; open: (broker: number, s: PartitionState) => Promise<Partition> } {
  const disk = new SimDisk();
  const clock = new VirtualClock();
  return {
    clock,
    open: async (broker, s) => Partition.open(broker, await PartitionLog.open({ disk, dir: `b${broker}/T-0`, clock, config: { flushIntervalMs: 0 } }), s, clock, config, 0),
  };
}

void t.test('a sole replica commits at once: the high watermark follows the log end', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state({ replicas: [1], isr: [1] }));
  const result = await leader.appendAsLeader(makeBatch('a', 3), -1, 1, 1000);
  t.same([result.baseOffset, result.lastOffset], [0, 2]);
  t.equal(leader.highWatermark, 3);
  t.same(valuesOf((await leader.readCommitted(0, 1 << 20)).bytes), ['a-0', 'a-1', 'a-2']);
  await t.rejects(leader.appendAsLeader(makeBatch('b', 1), -1, 2, 1000), { code: 'NOT_ENOUGH_REPLICAS' }, 'min.insync.replicas refuses before appending');
  t.equal(leader.log.logEndOffset, 3, 'the log is untouched');
  await t.rejects(leader.readCommitted(9, 100), { code: 'OFFSET_OUT_OF_RANGE' });
});

void t.test('acks=all waits for every ISR member; consumers read only below the high watermark', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state());
  const f2 = await open(2, state());
  const f3 = await open(3, state());
  let acked = false;
  const produce = leader.appendAsLeader(makeBatch('x', 2), -1, 2, 5000).then(() => { acked = true; });
  await flush();
  t.equal(leader.log.logEndOffset, 2);
  t.equal((await leader.readCommitted(0, 1 << 20)).bytes.length, 0, 'nothing committed yet');
  await fetchOnce(leader, f2, 2); // f2 gets the batch
  await fetchOnce(leader, f2, 2); // and says so
  await flush();
  t.notOk(acked, 'one follower of two is not enough');
  t.equal(leader.highWatermark, 0);
  await fetchOnce(leader, f3, 3);
  await fetchOnce(leader, f3, 3);
  await produce;
  t.ok(acked);
  t.equal(leader.highWatermark, 2);
  t.same(valuesOf((await leader.readCommitted(0, 1 << 20)).bytes), ['x-0', 'x-1']);
  await fetchOnce(leader, f2, 2);
  t.equal(f2.highWatermark, 2, 'followers learn the high watermark from fetches');
  const late = leader.appendAsLeader(makeBatch('y', 1), 1, 2, 5000);
  t.equal((await late).baseOffset, 2, 'acks=1 resolves once written locally');
  t.equal(leader.highWatermark, 2);
});

void t.test('acks=all times out when the ISR does not confirm; losing leadership fails waiting produces', async (t) => {
  const { open, clock } = replicas();
  const leader = await open(1, state());
  const timedOut = leader.appendAsLeader(makeBatch('a', 1), -1, 1, 3000);
  await flush();
  clock.advance(3000);
  await t.rejects(timedOut, { code: 'REQUEST_TIMED_OUT', message: /may still be committed/ });
  const waiting = leader.appendAsLeader(makeBatch('b', 1), -1, 1, 3000);
  await flush();
  await leader.update(state({ leader: 2, leaderEpoch: 1, partitionEpoch: 1 }));
  await t.rejects(waiting, { code: 'NOT_LEADER_OR_FOLLOWER' });
  await t.rejects(leader.appendAsLeader(makeBatch('c', 1), 1, 1, 3000), { code: 'NOT_LEADER_OR_FOLLOWER' }, 'a deposed leader refuses writes at once');
});

void t.test('followers fetching with another leader epoch are refused', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state({ leaderEpoch: 4 }));
  await t.rejects(leader.readForFollower({ followerId: 2, leaderEpoch: 3, fetchOffset: 0, lastFetchedEpoch: -1, bytesMax: 100 }), { code: 'FENCED_LEADER_EPOCH' });
  await t.rejects(leader.readForFollower({ followerId: 2, leaderEpoch: 5, fetchOffset: 0, lastFetchedEpoch: -1, bytesMax: 100 }), { code: 'UNKNOWN_LEADER_EPOCH' });
  await t.rejects(leader.readForFollower({ followerId: 7, leaderEpoch: 4, fetchOffset: 0, lastFetchedEpoch: -1, bytesMax: 100 }), { code: 'NOT_LEADER_OR_FOLLOWER' });
});

void t.test('KIP-101: a follower with an old leader\'s uncommitted batches truncates where the epochs part', async (t) => {
  const { open } = replicas();
  // Epoch 0: broker 1 leads and both replicas get 2 records.
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  await b1.appendAsLeader(makeBatch('e0', 2), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  // Broker 1 takes 2 more records in epoch 0 that never reach broker 2.
  await b1.appendAsLeader(makeBatch('lost', 2), 1, 1, 1000);
  // Broker 2 becomes leader in epoch 1 and takes 1 record; broker 1 follows.
  const epoch1 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 });
  await b2.update(epoch1);
  await b1.update(epoch1);
  await b2.appendAsLeader(makeBatch('e1', 1), 1, 1, 1000);
  const answer = await fetchOnce(b2, b1, 1);
  t.match(answer, { kind: 'diverging', epoch: 0, endOffset: 2 });
  t.equal(b1.log.logEndOffset, 2, 'broker 1 cut its uncommitted records');
  await fetchOnce(b2, b1, 1);
  t.same(valuesOf(await readAll(b1.log)), ['e0-0', 'e0-1', 'e1-0']);
  t.same(valuesOf(await readAll(b2.log)), valuesOf(await readAll(b1.log)), 'the logs agree');
});

void t.test('KIP-101: a new leader that has not written in its epoch still tells a forked follower where to cut', async (t) => {
  const { open } = replicas();
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  await b1.appendAsLeader(makeBatch('e0', 2), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  // Epoch 1 on broker 1: two records broker 2 never sees.
  await b1.update(state({ replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 1, partitionEpoch: 1 }));
  await b1.appendAsLeader(makeBatch('e1', 2), 1, 1, 1000);
  // Two fast leader changes: broker 2 leads epoch 2 without writing anything.
  const epoch2 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 2, partitionEpoch: 2 });
  await b2.update(epoch2);
  await b1.update(epoch2);
  const answer = await fetchOnce(b2, b1, 1);
  t.match(answer, { kind: 'diverging', epoch: 0, endOffset: 2 }, 'epoch 1 is unknown to the leader: cut to the end of epoch 0');
  t.equal(b1.log.logEndOffset, 2);
  await b2.appendAsLeader(makeBatch('e2', 1), 1, 1, 1000);
  await fetchOnce(b2, b1, 1);
  t.same(valuesOf(await readAll(b1.log)), ['e0-0', 'e0-1', 'e2-0']);
});

void t.test('ISR: a lagging follower leaves after replica.lag.time.max.ms; it joins again once caught up', async (t) => {
  const { open, clock } = replicas();
  const leader = await open(1, state());
  const f2 = await open(2, state());
  const f3 = await open(3, state());
  const alive = (): boolean => true;
  await leader.appendAsLeader(makeBatch('a', 1), 1, 1, 1000);
  t.equal(leader.wantedIsr(alive), null, 'everyone has a fresh lag window');
  clock.advance(6000);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f2, 2);
  clock.advance(6000);
  t.same(leader.wantedIsr(alive), [1, 2], 'broker 3 never fetched: it leaves');
  leader.isrChangeSent([1, 2]);
  t.equal(leader.wantedIsr(alive), null, 'one change in flight at a time');
  await leader.update(state({ isr: [1, 2], partitionEpoch: 1 }));
  await leader.appendAsLeader(makeBatch('b', 1), 1, 1, 1000);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f2, 2);
  t.equal(leader.highWatermark, 2, 'the high watermark no longer waits for broker 3');
  await fetchOnce(leader, f3, 3);
  t.equal(leader.wantedIsr(alive), null, 'broker 3 below the high watermark stays out');
  await fetchOnce(leader, f3, 3);
  t.same(leader.wantedIsr(alive), [1, 2, 3], 'caught up: it joins');
  t.equal(leader.wantedIsr(() => false), null, 'a fenced broker is not taken in');
  leader.isrChangeSent([1, 2, 3]);
  leader.isrChangeFailed();
  t.same(leader.wantedIsr(alive), [1, 2, 3], 'a refused change is tried again');
});

void t.test('a follower below the leader\'s log start starts over there', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state({ replicas: [1, 2], isr: [1] }));
  await leader.appendAsLeader(makeBatch('a', 5), 1, 1, 1000);
  await leader.log.truncateFullyAndStartAt(5);
  const f2 = await open(2, state({ replicas: [1, 2], isr: [1] }));
  const answer = await fetchOnce(leader, f2, 2);
  t.match(answer, { kind: 'start-over', logStartOffset: 5 });
  t.equal(f2.log.logStartOffset, 5);
  t.equal(f2.log.logEndOffset, 5);
});

void t.test('a follower that led an epoch without writing in it drops that epoch and catches up (sim seed 9)', async (t) => {
  const { open } = replicas();
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2] }));
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2] }));
  await b1.appendAsLeader(makeBatch('e0', 2), 1, 1, 1000);
  await fetchOnce(b1, b2, 2);
  // Broker 2 leads epoch 1 and writes nothing; broker 1 takes over in epoch 2.
  await b2.update(state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 }));
  t.equal(b2.lastFetchedEpoch, 1, 'the empty epoch is in its cache');
  const epoch2 = state({ replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 2, partitionEpoch: 2 });
  await b1.update(epoch2);
  await b2.update(epoch2);
  await b1.appendAsLeader(makeBatch('e2', 1), 1, 1, 1000);
  t.match(await fetchOnce(b1, b2, 2), { kind: 'diverging', epoch: 0, endOffset: 2 });
  t.equal(b2.lastFetchedEpoch, 0, 'the empty epoch went with the (empty) cut');
  t.match(await fetchOnce(b1, b2, 2), { kind: 'records' }, 'then it fetches on instead of diverging forever');
  t.same(valuesOf(await readAll(b2.log)), ['e0-0', 'e0-1', 'e2-0']);
});

void t.test('a follower with an empty log that led an empty epoch drops it and fetches from the start (sim seed 88)', async (t) => {
  const { open } = replicas();
  const b2 = await open(2, state({ replicas: [1, 2], isr: [1, 2], leader: 2 }));
  await b2.appendAsLeader(makeBatch('e0', 3), 1, 1, 1000); // never reached broker 1
  const b1 = await open(1, state({ replicas: [1, 2], isr: [1, 2], leader: 2 }));
  await b1.update(state({ replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 1, partitionEpoch: 1 }));
  t.equal(b1.lastFetchedEpoch, 1, 'broker 1 led epoch 1 at offset 0 and wrote nothing');
  const epoch2 = state({ replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 2, partitionEpoch: 2 });
  await b2.update(epoch2);
  await b1.update(epoch2);
  t.match(await fetchOnce(b2, b1, 1), { kind: 'diverging' }, 'the leader never had epoch 1');
  t.equal(b1.lastFetchedEpoch, -1);
  await fetchOnce(b2, b1, 1);
  t.same(valuesOf(await readAll(b1.log)), ['e0-0', 'e0-1', 'e0-2']);
});

void t.test('a leader deposed while its batches are written fails their acks=all at once', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state());
  const produce = leader.appendAsLeader(makeBatch('a', 1), -1, 1, 60_000);
  const deposed = leader.update(state({ leader: 2, leaderEpoch: 1, partitionEpoch: 1 }));
  await t.rejects(produce, { code: 'NOT_LEADER_OR_FOLLOWER', message: /while appending; the write may still be committed/ });
  await deposed;
});

void t.test('an ISR that shrinks below min.insync.replicas while a write waits fails it with NOT_ENOUGH_REPLICAS_AFTER_APPEND (sim seed 4)', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state());
  const produce = leader.appendAsLeader(makeBatch('w', 2), -1, 2, 5000);
  await flush();
  // The followers fall out; the controller shrinks the ISR to the leader alone, so the high
  // watermark passes the write with one copy where min.insync.replicas promised two.
  await leader.update(state({ isr: [1], partitionEpoch: 1 }));
  await t.rejects(produce, { code: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' });
  t.equal(leader.highWatermark, 2, 'the write is committed by the ISR rule, only not acknowledged');
  await t.resolves(leader.appendAsLeader(makeBatch('v', 1), -1, 1, 5000), 'with min.insync.replicas 1 the same ISR acknowledges');
});

void t.test('a new leader shows its high watermark only once it reaches the start of its own epoch (KIP-207)', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state());
  const f2 = await open(2, state());
  const f3 = await open(3, state());
  const produce = leader.appendAsLeader(makeBatch('a', 3), -1, 2, 5000);
  await flush();
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f3, 3);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f3, 3);
  await produce;
  await fetchOnce(leader, f2, 2);
  t.equal(leader.highWatermark, 3);
  t.equal(f2.highWatermark, 3);
  t.ok(leader.highWatermarkEstablished);
  // More is committed on the old leader; f2 has the data but not yet the new high watermark.
  const more = leader.appendAsLeader(makeBatch('b', 2), -1, 2, 5000);
  await flush();
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f3, 3);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f3, 3);
  await more;
  t.equal(leader.highWatermark, 5, 'the old leader served 5');
  t.equal(f2.highWatermark, 3, 'f2 learned only 3 so far');
  await f2.update(state({ leader: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1 }));
  await f3.update(state({ leader: 2, leaderEpoch: 1, isr: [2, 3], partitionEpoch: 1 }));
  t.equal(f2.leaderEpochStartOffset, 5);
  t.notOk(f2.highWatermarkEstablished, 'high watermark 3 is below the epoch start 5: not shown to clients');
  await fetchOnce(f2, f3, 3);
  t.equal(f2.highWatermark, 5);
  t.ok(f2.highWatermarkEstablished, 'established once the ISR has the epoch start');
  t.throws(() => { f2.checkEpoch(0); }, { code: 'FENCED_LEADER_EPOCH' }, 'a client that knows only epoch 0 must refresh');
  t.throws(() => { f2.checkEpoch(2); }, { code: 'UNKNOWN_LEADER_EPOCH' });
});

void t.test('an ISR expansion whose answer was lost keeps counting for the high watermark and is sent again (sim seed 163 of 5 nodes)', async (t) => {
  const { open, clock } = replicas();
  const leader = await open(1, state({ isr: [1] }));
  const f2 = await open(2, state({ isr: [1] }));
  await leader.appendAsLeader(makeBatch('a', 2), 1, 1, 1000);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f2, 2);
  const wanted = leader.wantedIsr(() => true);
  t.same(wanted, [1, 2], 'f2 caught up: the leader asks to add it');
  leader.isrChangeSent(wanted ?? []);
  leader.isrChangeUnanswered(); // the AlterPartition timed out: the controller may have added f2
  t.same(leader.isrChangeToResend(), [1, 2], 'the same change goes out again');
  t.equal(leader.wantedIsr(() => true), null, 'no other change while this one is unresolved');
  await leader.appendAsLeader(makeBatch('b', 3), 1, 1, 1000);
  t.equal(leader.highWatermark, 2, 'f2 still counts: the high watermark waits for it');
  clock.advance(1);
  leader.isrChangeFailed(); // a definite refusal
  await leader.appendAsLeader(makeBatch('c', 1), 1, 1, 1000);
  t.equal(leader.highWatermark, 6, 'refused: back to the image\'s ISR, the leader alone');
  t.equal(leader.isrChangeToResend(), null);
});

void t.test('an ISR change refused because the leader is stale stays counted until the image says (sim seed 785 of 5 nodes)', async (t) => {
  const { open } = replicas();
  const leader = await open(1, state({ isr: [1, 2] }));
  const f2 = await open(2, state({ isr: [1, 2] }));
  const f3 = await open(3, state({ isr: [1, 2] }));
  await leader.appendAsLeader(makeBatch('a', 2), 1, 1, 1000);
  for (const [follower, id] of [[f2, 2], [f3, 3], [f2, 2], [f3, 3]] as const) await fetchOnce(leader, follower, id);
  const wanted = leader.wantedIsr(() => true);
  t.same(wanted, [1, 2, 3]);
  leader.isrChangeSent(wanted ?? []);
  // The controller had added 3 and then elected it; this deposed leader hears FENCED_LEADER_EPOCH.
  t.equal(isrChangeOutcome(new DriftwoodError('FENCED_LEADER_EPOCH', 'stale')), 'outdated');
  leader.isrChangeOutdated();
  t.equal(leader.isrChangeToResend(), null, 'not sent again: the image will say');
  await leader.appendAsLeader(makeBatch('b', 4), 1, 1, 1000);
  await fetchOnce(leader, f2, 2);
  await fetchOnce(leader, f2, 2);
  t.equal(leader.highWatermark, 2, 'broker 3 still counts, so the stale leader commits nothing it lacks');
  t.equal(isrChangeOutcome(new DriftwoodError('INVALID_UPDATE_VERSION', 'stale')), 'outdated');
  t.equal(isrChangeOutcome(new DriftwoodError('INELIGIBLE_REPLICA', 'fenced')), 'refused');
  t.equal(isrChangeOutcome(new DriftwoodError('REQUEST_TIMED_OUT', 'lost')), 'unanswered');
  t.equal(isrChangeOutcome(new DriftwoodError('NOT_CONTROLLER', 'moved')), 'unanswered');
  t.equal(isrChangeOutcome(new Error('socket hang up')), 'unanswered');
});

void t.test('with flush.ms 0 a sole ISR member counts only synced records in the high watermark (sim seed 394)', async (t) => {
  const held: Array<() => void> = [];
  let holdSyncs = false;
  const disk = slowDisk(new SimDisk(), { syncDelayMs: () => (holdSyncs ? 1 : 0), writeDelayMs: () => 0, after: (_delayMs, run) => { held.push(run); }, alive: () => true });
  const clock = new VirtualClock();
  const log = await PartitionLog.open({ disk, dir: 'b1/T-0', clock, config: { flushIntervalMs: 0 } });
  const leader = await Partition.open(1, log, state({ isr: [1] }), clock, config, 0);
  await leader.appendAsLeader(makeBatch('a', 2), 1, 1, 1000);
  t.equal(leader.highWatermark, 2);
  holdSyncs = true;
  const pending = leader.appendAsLeader(makeBatch('b', 3), 1, 1, 1000);
  await flush();
  t.equal(leader.log.logEndOffset, 5, 'written');
  await leader.update(state({ isr: [1], partitionEpoch: 1 })); // anything that recomputes the high watermark
  t.equal(leader.highWatermark, 2, 'not synced yet: a consumer must not see it, a power loss could take it back');
  holdSyncs = false;
  for (const run of held.splice(0)) run();
  await pending;
  t.equal(leader.highWatermark, 5, 'synced: committed');
});
