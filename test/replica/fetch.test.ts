// Replica fetching between a leader and followers in one process: the leader's incremental
// fetch sessions (what travels, long polls, session errors), the follower's fetcher (it
// replicates, the high watermark follows, acks=all completes), and the wire codec.
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { SimDisk } from '../../sim/disk.js';
import type { PartitionState } from '../../src/controller/image.js';
import { decodeFetchResponse, encodeFetchResponse } from '../../src/replica/fetch-codec.js';
import type { ReplicaFetchRequest } from '../../src/replica/fetch-protocol.js';
import { defaultFetchSessionsConfig, FetchSessions } from '../../src/replica/fetch-sessions.js';
import { Partition } from '../../src/replica/partition.js';
import { ReplicaFetcher } from '../../src/replica/replica-fetcher.js';
import { PartitionLog } from '../../storage/partition-log.js';
import { makeBatch, readAll, valuesOf } from '../helpers/log.js';

const flush = async (): Promise<void> => { for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve)); };

function state(partition: number, overrides: Partial<PartitionState> = {}): PartitionState {
  return { topicId: 'T', partition, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0, ...overrides };
}

async function setup(partitions: number): Promise<{ clock: VirtualClock; leaders: Partition[]; followers: Partition[]; sessions: FetchSessions }> {
  const disk = new SimDisk();
  const clock = new VirtualClock();
  const open = async (broker: number, p: number): Promise<Partition> => Partition.open(broker, await PartitionLog.open({ disk, dir: `b${broker}/T-${p}`, clock, config: { flushIntervalMs: 0 } }), state(p), clock, { replicaLagTimeMaxMs: 10_000 }, 0);
  const leaders: Partition[] = [];
  const followers: Partition[] = [];
  for (let p = 0; p < partitions; p += 1) {
    leaders.push(await open(1, p));
    followers.push(await open(2, p));
  }
  const sessions = new FetchSessions(defaultFetchSessionsConfig, clock, (topicId, p) => (topicId === 'T' ? leaders[p] : undefined));
  for (const leader of leaders) leader.onChange(() => { sessions.notify('T', leader.state.partition); });
  return { clock, leaders, followers, sessions };
}

function request(overrides: Partial<ReplicaFetchRequest>): ReplicaFetchRequest {
  return { followerId: 2, sessionId: 0, sessionEpoch: 0, positions: [], removed: [], maxWaitMs: 0, bytesMax: 1 << 20, partitionBytesMax: 1 << 20, ...overrides };
}

const at = (partition: number, fetchOffset: number, lastFetchedEpoch = -1): ReplicaFetchRequest['positions'][number] => ({ topicId: 'T', partition, leaderEpoch: 0, fetchOffset, lastFetchedEpoch });

void t.test('sessions: the first request lists everything, later ones what changed; idle partitions stay off the wire', async (t) => {
  const { leaders, sessions } = await setup(3);
  await leaders[1]!.appendAsLeader(makeBatch('a', 2), 1, 1, 1000);
  const first = await sessions.handle(request({ positions: [at(0, 0), at(1, 0), at(2, 0)] }));
  t.ok(first.sessionId > 0);
  t.same(first.partitions.map((p) => [p.partition, p.kind]), [[0, 'records'], [1, 'records'], [2, 'records']], 'the first answer tells every high watermark');
  const second = await sessions.handle(request({ sessionId: first.sessionId, sessionEpoch: 1, positions: [at(1, 2, 0)] }));
  t.same(second.partitions.map((p) => [p.partition, p.highWatermark, p.kind === 'records' ? p.bytes.length : -1]), [[1, 2, 0]], 'its fetch at 2 moved the high watermark: only that travels');
  t.equal(leaders[1]!.highWatermark, 2);
  const third = await sessions.handle(request({ sessionId: first.sessionId, sessionEpoch: 2 }));
  t.same(third.partitions, [], 'nothing new anywhere: an empty answer');
  t.match(await sessions.handle(request({ sessionId: first.sessionId, sessionEpoch: 9 })), { sessionError: 'INVALID_FETCH_SESSION_EPOCH' });
  t.match(await sessions.handle(request({ sessionId: first.sessionId, sessionEpoch: 3 })), { sessionError: 'FETCH_SESSION_ID_NOT_FOUND' }, 'an out-of-step session is closed');
  const strange = await sessions.handle(request({ positions: [{ topicId: 'X', partition: 0, leaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1 }, { ...at(0, 0), leaderEpoch: 5 }] }));
  t.same(strange.partitions.map((p) => p.kind === 'error' ? p.error : p.kind), ['NOT_LEADER_OR_FOLLOWER', 'UNKNOWN_LEADER_EPOCH']);
  await t.rejects(sessions.handle(request({ maxWaitMs: 10 ** 9 })), { code: 'INVALID_REQUEST' });
  await t.rejects(sessions.handle(request({ removed: [{ topicId: 'T', partition: 0 }] })), { code: 'INVALID_REQUEST' });
  t.equal(sessions.size, 1, 'a follower keeps one session per leader');
});

void t.test('sessions: a fetch with nothing new waits until an append or maxWaitMs', async (t) => {
  const { clock, leaders, sessions } = await setup(2);
  const opened = await sessions.handle(request({ positions: [at(0, 0), at(1, 0)] }));
  let answered = false;
  const waiting = sessions.handle(request({ sessionId: opened.sessionId, sessionEpoch: 1, maxWaitMs: 500 })).then((answer) => { answered = true; return answer; });
  await flush();
  t.notOk(answered, 'it waits');
  await leaders[1]!.appendAsLeader(makeBatch('b', 1), 1, 1, 1000);
  const answer = await waiting;
  t.same(answer.partitions.map((p) => [p.partition, p.kind === 'records' ? valuesOf(p.bytes) : p.kind]), [[1, ['b-0']]], 'the append woke it');
  const idle = sessions.handle(request({ sessionId: opened.sessionId, sessionEpoch: 2, positions: [at(1, 1, 0)], maxWaitMs: 500 }));
  await flush();
  clock.advance(500);
  t.match((await idle).partitions, [{ partition: 1, highWatermark: 1 }], 'its own fetch moved the high watermark, which it is told');
  const quiet = sessions.handle(request({ sessionId: opened.sessionId, sessionEpoch: 3, maxWaitMs: 500 }));
  await flush();
  clock.advance(500);
  t.same((await quiet).partitions, [], 'after maxWaitMs with nothing: an empty answer');
});

void t.test('a fetcher replicates every partition it follows; acks=all completes through it', async (t) => {
  const { clock, leaders, followers, sessions } = await setup(3);
  const fatal: unknown[] = [];
  let requests = 0;
  const fetcher = new ReplicaFetcher(1, 2, { maxWaitMs: 100, bytesMax: 1 << 20, partitionBytesMax: 1 << 20, backoffMs: 50 }, {
    clock,
    channel: { fetch: async (_leader, r) => { requests += 1; return decodeFetchResponse(encodeFetchResponse(await sessions.handle(r))); } },
    onFatal: (error) => { fatal.push(error); },
  });
  for (const follower of followers) fetcher.assign(follower);
  fetcher.start();
  const acked = leaders.map((leader, p) => leader.appendAsLeader(makeBatch(`p${p}`, 3), -1, 2, 5000));
  for (let i = 0; i < 50 && followers.some((f) => f.highWatermark < 3); i += 1) {
    await flush();
    clock.advance(10);
  }
  await Promise.all(acked);
  for (const [p, follower] of followers.entries()) {
    t.same(valuesOf(await readAll(follower.log)), [`p${p}-0`, `p${p}-1`, `p${p}-2`], `partition ${p} replicated`);
    t.equal(follower.highWatermark, 3, `partition ${p}: the follower knows the high watermark`);
  }
  const before = requests;
  for (let i = 0; i < 10; i += 1) {
    clock.advance(100);
    await flush();
  }
  t.ok(requests - before <= 11, `idle, it long-polls: ${requests - before} requests in 1 s of virtual time`);
  fetcher.unassign({ topicId: 'T', partition: 0 });
  t.equal(fetcher.size, 2);
  fetcher.stop();
  t.same(fatal, []);
});

void t.test('the fetch codec round-trips and refuses damage', (t) => {
  const response = {
    sessionId: 7,
    partitions: [
      { topicId: 'T', partition: 0, highWatermark: 5, logStartOffset: 0, kind: 'records' as const, bytes: makeBatch('x', 2) },
      { topicId: 'T', partition: 1, highWatermark: 1, logStartOffset: 0, kind: 'diverging' as const, epoch: 3, endOffset: 9 },
      { topicId: 'T', partition: 2, highWatermark: 1, logStartOffset: 4, kind: 'start-over' as const },
      { topicId: 'T', partition: 3, highWatermark: -1, logStartOffset: -1, kind: 'error' as const, error: 'FENCED_LEADER_EPOCH' as const, message: 'old' },
    ],
  };
  const encoded = encodeFetchResponse(response);
  t.same(decodeFetchResponse(encoded), response);
  t.throws(() => decodeFetchResponse(encoded.subarray(0, encoded.length - 1)), { code: 'CORRUPT_MESSAGE' });
  t.throws(() => decodeFetchResponse(Buffer.concat([encoded, Buffer.from([1])])), { code: 'CORRUPT_MESSAGE' });
  t.throws(() => decodeFetchResponse(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d])), { code: 'CORRUPT_MESSAGE' });
  t.throws(() => decodeFetchResponse(Buffer.from([0xff, 0, 0, 0])), { code: 'CORRUPT_MESSAGE' });
  t.end();
});

void t.test('sessions: idle partitions are read only every idlePartitionsScanMs, which keeps their followers in the ISR', async (t) => {
  const { clock, leaders, sessions } = await setup(4);
  const reads = leaders.map(() => 0);
  leaders.forEach((leader, p) => {
    const read = leader.readForFollower.bind(leader);
    leader.readForFollower = (fetch) => {
      reads[p] = (reads[p] ?? 0) + 1;
      return read(fetch);
    };
  });
  const opened = await sessions.handle(request({ positions: [at(0, 0), at(1, 0), at(2, 0), at(3, 0)] }));
  t.same(reads, [1, 1, 1, 1], 'a new session reads every partition');
  let epoch = 1;
  const round = (): Promise<unknown> => sessions.handle(request({ sessionId: opened.sessionId, sessionEpoch: epoch++ }));
  await round();
  t.same(reads, [1, 1, 1, 1], 'an idle round reads none');
  await leaders[2]!.appendAsLeader(makeBatch('c', 1), 1, 1, 1000);
  await round();
  t.same(reads, [1, 1, 2, 1], 'after an append, only that partition');
  for (let ms = 0; ms < 12_000; ms += 500) {
    clock.advance(500);
    await round();
  }
  const scans = 12_000 / defaultFetchSessionsConfig.idlePartitionsScanMs;
  t.ok(reads[0]! >= scans && reads[0]! <= scans + 2, `idle partition 0 was read ${reads[0]} times in 12 s of rounds every 500 ms`);
  t.equal(leaders[0]!.wantedIsr(() => true), null, 'its follower stays in the ISR past replicaLagTimeMaxMs');
});
