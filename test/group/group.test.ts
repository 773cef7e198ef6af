// The consumer group's membership and reconciliation rules (src/group/group.ts) and the
// assignors: at most one member holds a partition at any time, a member keeps what it still
// owns while others move, commits are fenced to holders and never go back, and a restored
// group honours every grant until it is given up or its session runs out.
import fc from 'fast-check';
import t from 'tap';
import { assign } from '../../src/group/assignor.js';
import { ConsumerGroup, fromTopicPartitionList, partitionKey, type HeartbeatAnswer, type TopicPartitionList } from '../../src/group/group.js';
import { decodeGroupRecord, encodeGroupRecord } from '../../src/group/group-records.js';
import { DriftwoodError } from '../../storage/errors.js';

const counts = (table: Record<string, number>) => (topic: string): number | undefined => table[topic];
let serial = 0;
const fresh = (): string => `m-${++serial}`;

function flat(list: readonly TopicPartitionList[]): string[] {
  return [...fromTopicPartitionList(list)].sort();
}

void t.test('range and roundrobin assignors', (t) => {
  const members = [{ memberId: 'b', subscribedTopics: ['x'] }, { memberId: 'a', subscribedTopics: ['x', 'y'] }];
  const range = assign('range', members, new Map([['x', 5], ['y', 2]]));
  t.same(range.get('a'), new Map([['x', [0, 1, 2]], ['y', [0, 1]]]), 'the first member in id order gets the extra partition');
  t.same(range.get('b'), new Map([['x', [3, 4]]]));
  const robin = assign('roundrobin', members, new Map([['x', 4], ['y', 2]]));
  t.same(robin.get('a'), new Map([['x', [0, 2]], ['y', [0, 1]]]));
  t.same(robin.get('b'), new Map([['x', [1, 3]]]));
  t.same(assign('range', members, new Map([['y', 2]])).get('b'), new Map(), 'a topic that does not exist is left out');
  t.end();
});

void t.test('every partition goes to exactly one subscribed member (property)', (t) => {
  fc.assert(fc.property(
    fc.constantFrom('range' as const, 'roundrobin' as const),
    fc.array(fc.subarray(['x', 'y', 'z'], { minLength: 1 }), { minLength: 1, maxLength: 8 }),
    fc.record({ x: fc.integer({ min: 0, max: 20 }), y: fc.integer({ min: 0, max: 20 }), z: fc.integer({ min: 0, max: 20 }) }),
    (name, subscriptions, table) => {
      const members = subscriptions.map((topics, i) => ({ memberId: `m${i}`, subscribedTopics: topics }));
      const target = assign(name, members, new Map(Object.entries(table)));
      const seen = new Map<string, string>();
      for (const [memberId, byTopic] of target) {
        for (const [topic, partitions] of byTopic) {
          for (const p of partitions) {
            const key = partitionKey(topic, p);
            if (seen.has(key)) return false;
            if (!members.find((m) => m.memberId === memberId)?.subscribedTopics.includes(topic)) return false;
            seen.set(key, memberId);
          }
        }
      }
      const wanted = Object.entries(table).filter(([topic]) => subscriptions.some((s) => s.includes(topic))).reduce((sum, [, n]) => sum + n, 0);
      return seen.size === wanted;
    },
  ));
  t.end();
});

void t.test('a member joining again under the id it had frees what that id held at once', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 4 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'], sessionTimeoutMs: 6000 }, 0, partitions, fresh);
  let b = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'], sessionTimeoutMs: 6000 }, 0, partitions, fresh);
  const a1 = g.heartbeat({ memberId: a.memberId, memberEpoch: a.memberEpoch, ownedPartitions: a.assignment }, 10, partitions, fresh);
  const a2 = g.heartbeat({ memberId: a.memberId, memberEpoch: a1.memberEpoch, ownedPartitions: a1.assignment }, 20, partitions, fresh);
  b = g.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch }, 30, partitions, fresh);
  const heldByB = flat(b.assignment);
  t.equal(heldByB.length, 2, 'b holds its half');
  t.same([...heldByB, ...flat(a2.assignment)].sort(), ['t/0', 't/1', 't/2', 't/3'], 'a holds the other half');
  // b stops hearing answers, drops everything as its session ran out (by its own count) and
  // joins again naming its old id, long before the coordinator would expire that id.
  const b2 = g.heartbeat({ memberId: b.memberId, memberEpoch: 0, subscribedTopics: ['t'], sessionTimeoutMs: 6000 }, 40, partitions, fresh);
  t.not(b2.memberId, b.memberId, 'a new id: a commit the old one left in flight is refused');
  t.equal(g.memberCount, 2, 'the old id is gone, not left holding its partitions until its session runs out');
  t.throws(() => { g.checkCommit(b.memberId, b.memberEpoch, [{ topic: 't', partition: 2, offset: 1 }]); }, { code: 'UNKNOWN_MEMBER_ID' });
  const targetB = g.heartbeat({ memberId: b2.memberId, memberEpoch: b2.memberEpoch }, 50, partitions, fresh);
  t.same(flat(targetB.assignment), heldByB, 'what the old id held is granted to the new one at once');
  // An id the group does not know (already expired) is a plain join.
  const c = g.heartbeat({ memberId: 'gone', memberEpoch: 0, subscribedTopics: ['t'] }, 60, partitions, fresh);
  t.not(c.memberId, 'gone');
  t.equal(g.memberCount, 3);
  t.end();
});

void t.test('a second member gets partitions only after the first gives them up', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 4 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  t.same(flat(a.assignment), ['t/0', 't/1', 't/2', 't/3']);
  let b = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  t.same(b.assignment, [], 'nothing is free yet: a holds everything');
  t.equal(g.state, 'reconciling');
  const a2 = g.heartbeat({ memberId: a.memberId, memberEpoch: a.memberEpoch, ownedPartitions: a.assignment }, 10, partitions, fresh);
  const aTarget = flat(a2.assignment);
  t.equal(aTarget.length, 2, 'a is told to keep half');
  b = g.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch }, 20, partitions, fresh);
  t.same(b.assignment, [], 'a still reports holding the other half');
  // a keeps its half without interruption and reports the rest given up
  g.heartbeat({ memberId: a.memberId, memberEpoch: a2.memberEpoch, ownedPartitions: a2.assignment }, 30, partitions, fresh);
  b = g.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch }, 40, partitions, fresh);
  t.equal(flat(b.assignment).length, 2);
  t.same([...flat(b.assignment), ...aTarget].sort(), ['t/0', 't/1', 't/2', 't/3']);
  g.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch, ownedPartitions: b.assignment }, 50, partitions, fresh);
  t.equal(g.state, 'stable');
  t.end();
});

void t.test('commits are fenced to holders and never go back', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 2 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  const code = (fn: () => void): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (error) {
      return error instanceof DriftwoodError ? error.code : 'other';
    }
  };
  t.equal(code(() => { g.checkCommit(a.memberId, a.memberEpoch, [{ topic: 't', partition: 0, offset: 5 }]); }), undefined);
  g.offsets.set('t/0', { offset: 5, metadata: '', commitMs: 0 });
  t.equal(code(() => { g.checkCommit(a.memberId, a.memberEpoch, [{ topic: 't', partition: 0, offset: 4 }]); }), 'COMMIT_OFFSET_REGRESSION');
  t.equal(code(() => { g.checkCommit(a.memberId, a.memberEpoch, [{ topic: 't', partition: 0, offset: 5 }]); }), undefined, 'the same offset again is fine (a retry)');
  t.equal(code(() => { g.checkCommit(a.memberId, a.memberEpoch, [{ topic: 'u', partition: 0, offset: 1 }]); }), 'STALE_MEMBER_EPOCH', 'not held');
  t.equal(code(() => { g.checkCommit(a.memberId, a.memberEpoch + 1, [{ topic: 't', partition: 0, offset: 6 }]); }), 'FENCED_MEMBER_EPOCH');
  t.equal(code(() => { g.checkCommit('nobody', 1, [{ topic: 't', partition: 0, offset: 6 }]); }), 'UNKNOWN_MEMBER_ID');
  t.equal(code(() => { g.checkCommit(undefined, undefined, [{ topic: 't', partition: 0, offset: 6 }]); }), 'UNKNOWN_MEMBER_ID', 'no standalone commits while the group has members');
  g.heartbeat({ memberId: a.memberId, memberEpoch: -1 }, 1, partitions, fresh);
  t.equal(g.memberCount, 0);
  t.equal(g.emptySinceMs, 1);
  t.equal(code(() => { g.checkCommit(undefined, undefined, [{ topic: 't', partition: 0, offset: 6 }]); }), undefined, 'standalone commits to an empty group');
  t.end();
});

void t.test('heartbeat errors: unknown member, fenced epoch, bad join', (t) => {
  const g = new ConsumerGroup('g', { membersMax: 1, sessionTimeoutMsMin: 1000, sessionTimeoutMsMax: 5000, sessionTimeoutMsDefault: 2000, heartbeatIntervalMs: 500 });
  const partitions = counts({ t: 1 });
  t.throws(() => g.heartbeat({ memberId: 'x', memberEpoch: 3 }, 0, partitions, fresh), { code: 'UNKNOWN_MEMBER_ID' });
  t.throws(() => g.heartbeat({ memberId: null, memberEpoch: 0 }, 0, partitions, fresh), { code: 'INVALID_REQUEST' });
  t.throws(() => g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'], sessionTimeoutMs: 10 }, 0, partitions, fresh), { code: 'INVALID_REQUEST' });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  t.equal(a.heartbeatIntervalMs, 500);
  t.throws(() => g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh), { code: 'GROUP_MAX_SIZE_REACHED' });
  t.throws(() => g.heartbeat({ memberId: a.memberId, memberEpoch: a.memberEpoch + 1 }, 0, partitions, fresh), { code: 'FENCED_MEMBER_EPOCH' });
  t.same(g.expire(1999), [], 'the session is 2000 ms');
  t.equal(g.nextDeadlineMs(), 2000);
  t.same(g.expire(2001), [a.memberId]);
  t.throws(() => g.heartbeat({ memberId: a.memberId, memberEpoch: a.memberEpoch }, 2002, partitions, fresh), { code: 'UNKNOWN_MEMBER_ID' });
  t.end();
});

void t.test('a member cannot claim partitions it was never granted', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 2 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  const b = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  g.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch, ownedPartitions: [{ topic: 't', partitions: [0, 1] }] }, 1, partitions, fresh);
  t.throws(() => { g.checkCommit(b.memberId, b.memberEpoch, [{ topic: 't', partition: 0, offset: 1 }]); }, { code: 'STALE_MEMBER_EPOCH' }, 'reporting is not owning');
  t.ok(a.assignment.length > 0);
  t.end();
});

void t.test('a subscribed topic growing moves the group epoch and assigns the new partitions', (t) => {
  const g = new ConsumerGroup('g');
  const table: Record<string, number> = { t: 1 };
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t', 'later'] }, 0, counts(table), fresh);
  t.same(flat(a.assignment), ['t/0']);
  const epoch = g.groupEpoch;
  table.later = 2;
  const a2 = g.heartbeat({ memberId: a.memberId, memberEpoch: a.memberEpoch }, 1, counts(table), fresh);
  t.same(flat(a2.assignment), ['later/0', 'later/1', 't/0']);
  t.ok(g.groupEpoch > epoch);
  t.end();
});

void t.test('a restored group honours grants until given up or expired', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 2 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  g.offsets.set('t/1', { offset: 7, metadata: 'm', commitMs: 0 });
  const copy = new ConsumerGroup('g');
  copy.restore(JSON.parse(JSON.stringify(g.persisted())) as ReturnType<ConsumerGroup['persisted']>, 1000);
  const b = copy.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 1000, partitions, fresh);
  t.same(b.assignment, [], 'the restored member is taken to hold everything it was granted');
  t.same(copy.expire(1000 + 10_000), [], 'its session counts from the restore');
  copy.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch }, 6000, partitions, fresh);
  t.same(copy.expire(1000 + 10_001), [a.memberId]);
  const b2: HeartbeatAnswer = copy.heartbeat({ memberId: b.memberId, memberEpoch: b.memberEpoch }, 11_002, partitions, fresh);
  t.same(flat(b2.assignment), ['t/0', 't/1']);
  t.end();
});

void t.test('records of __consumer_offsets round-trip; a bad one fails an assertion', (t) => {
  const records = [
    { type: 'offset' as const, group: 'g', topic: 't', partition: 3, value: { offset: 10, metadata: '', commitMs: 5 } },
    { type: 'offset' as const, group: 'g', topic: 't', partition: 3, value: null },
    { type: 'group' as const, group: 'g', value: { groupEpoch: 2, assignor: 'range' as const, emptySinceMs: null, members: [{ memberId: 'm', clientId: 'c', host: 'h', memberEpoch: 2, subscribedTopics: ['t'], sessionTimeoutMs: 10_000, assigned: [{ topic: 't', partitions: [0] }] }] } },
    { type: 'group' as const, group: 'g', value: null },
    { type: 'classic' as const, group: 'g', value: { state: 'Stable' as const, generationId: 3, protocolType: 'consumer', protocol: 'range', leader: 'm', members: [{ memberId: 'm', clientId: 'c', clientHost: '/127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 30_000, protocols: [{ name: 'range', metadata: 'AAE=' }], assignment: 'AAI=' }] } },
    { type: 'classic' as const, group: 'g', value: { state: 'Empty' as const, generationId: 4, protocolType: null, protocol: null, leader: null, members: [] } },
    { type: 'classic' as const, group: 'g', value: null },
    { type: 'checkpoint' as const, atMs: 99 },
  ];
  for (const record of records) {
    const { key, value } = encodeGroupRecord(record);
    t.same(decodeGroupRecord(key, value), record);
  }
  t.throws(() => decodeGroupRecord(Buffer.from('{"type":"what"}'), null));
  t.throws(() => decodeGroupRecord(null, null));
  t.throws(() => decodeGroupRecord(Buffer.from('not json'), null));
  t.throws(() => decodeGroupRecord(Buffer.from('{"type":"offset","group":"g","topic":"t","partition":-1}'), null));
  t.throws(() => decodeGroupRecord(Buffer.from('{"type":"classic","group":"g"}'), Buffer.from('{"state":"Weird","generationId":1,"protocolType":null,"protocol":null,"leader":null,"members":[]}')));
  t.throws(() => decodeGroupRecord(Buffer.from('{"type":"classic","group":"g"}'), Buffer.from('{"state":"Stable","generationId":1,"protocolType":null,"protocol":null,"leader":null,"members":[{"memberId":""}]}')));
  t.end();
});

void t.test('a replay by the same coordinator keeps the sessions it timed', (t) => {
  const g = new ConsumerGroup('g');
  const partitions = counts({ t: 1 });
  const a = g.heartbeat({ memberId: null, memberEpoch: 0, subscribedTopics: ['t'] }, 0, partitions, fresh);
  const copy = new ConsumerGroup('g');
  copy.restore(JSON.parse(JSON.stringify(g.persisted())) as ReturnType<ConsumerGroup['persisted']>, 9000, g.deadlines());
  t.same(copy.expire(10_001), [a.memberId], 'the deadline from the first heartbeat (10 s), not from the replay');
  t.end();
});
