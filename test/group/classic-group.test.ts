// Kafka's classic group protocol as src/group/classic-group.ts holds one group: the two-step
// join of JoinGroup v4+, a generation once every member has joined (or the rebalance timeout
// dropped the rest), the leader's assignment handed out through SyncGroup, heartbeats that
// tell members to join again, protocol selection, leaving, expiry and commit fencing.
import t from 'tap';
import { ClassicGroup, defaultClassicGroupLimits, type ClassicJoinAnswer, type ClassicJoinRequest } from '../../src/group/classic-group.js';
import { DriftwoodError } from '../../storage/errors.js';

const limits = { ...defaultClassicGroupLimits, initialRebalanceDelayMs: 100 };

function request(memberId: string, protocols: string[] = ['range', 'roundrobin'], extra: Partial<ClassicJoinRequest> = {}): ClassicJoinRequest {
  return {
    memberId,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    protocolType: 'consumer',
    protocols: protocols.map((name) => ({ name, metadata: Buffer.from(`${name}-meta-${memberId}`) })),
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 5000,
    requireKnownMemberId: true,
    ...extra,
  };
}

/** The two-step join of a new member: MEMBER_ID_REQUIRED with an id, then a join with it. */
async function newMemberId(group: ClassicGroup, nowMs: number, protocols?: string[]): Promise<string> {
  const refused = await group.join(request('', protocols), nowMs).then(() => null, (error: unknown) => error);
  if (!(refused instanceof DriftwoodError) || refused.code !== 'MEMBER_ID_REQUIRED') throw new Error(`expected MEMBER_ID_REQUIRED, got ${String(refused)}`);
  return refused.hints.memberId as string;
}

function code(error: unknown): string {
  return error instanceof DriftwoodError ? error.code : String(error);
}

void t.test('two members form a generation; the leader assigns through SyncGroup', async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0);
  t.equal(group.state, 'Empty', 'a member id handed out adds no member');
  const joinA = group.join(request(a), 0);
  t.equal(group.state, 'PreparingRebalance');
  const b = await newMemberId(group, 10);
  const joinB = group.join(request(b), 10);
  t.throws(() => { group.heartbeat(a, 0, 20); }, { code: 'REBALANCE_IN_PROGRESS' });
  group.tick(50);
  t.equal(group.state, 'PreparingRebalance', 'a new group waits out its initial delay');
  group.tick(limits.initialRebalanceDelayMs);
  const [answerA, answerB] = await Promise.all([joinA, joinB]);
  t.equal(group.state, 'CompletingRebalance');
  t.match(answerA, { generationId: 1, protocolName: 'range', leader: a, memberId: a });
  t.same(answerA.members.map((m) => m.memberId), [a, b], 'the leader sees every member');
  t.same(answerA.members[1]?.metadata, Buffer.from(`range-meta-${b}`), 'with its metadata for the chosen protocol');
  t.same(answerB.members, [], 'followers see none');
  t.equal(answerB.leader, a);

  const syncB = group.sync(b, 1, [], 200);
  await t.rejects(group.sync(b, 0, [], 200), { code: 'ILLEGAL_GENERATION' });
  t.throws(() => { group.checkCommit(a, 1); }, { code: 'REBALANCE_IN_PROGRESS' }, 'no commits until the assignment is out');
  const syncA = group.sync(a, 1, [{ memberId: a, assignment: Buffer.from('A') }, { memberId: b, assignment: Buffer.from('B') }], 210);
  t.same(await syncA, Buffer.from('A'));
  t.same(await syncB, Buffer.from('B'), 'a follower waiting on the leader gets its assignment');
  t.equal(group.state, 'Stable');
  t.same(await group.sync(b, 1, [], 220), Buffer.from('B'), 'a later sync answers at once');
  group.heartbeat(b, 1, 300);
  t.doesNotThrow(() => { group.checkCommit(b, 1); });
  t.throws(() => { group.checkCommit(b, 0); }, { code: 'ILLEGAL_GENERATION' });
  t.throws(() => { group.checkCommit('stranger', 1); }, { code: 'UNKNOWN_MEMBER_ID' });
  t.throws(() => { group.checkCommit('', -1); }, { code: 'UNKNOWN_MEMBER_ID' }, 'outsiders do not commit for a group with members');
  t.match(group.describe(), { state: 'Stable', protocolType: 'consumer', protocol: 'range' });
});

void t.test('a third member triggers a rebalance; heartbeats say so; a member that does not rejoin is dropped', async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0);
  const joinA = group.join(request(a), 0);
  group.tick(limits.initialRebalanceDelayMs);
  const first = await joinA;
  t.equal(first.generationId, 1);
  await group.sync(a, 1, [{ memberId: a, assignment: Buffer.from('all') }], 150);
  const b = await newMemberId(group, 200);
  const joinB = group.join(request(b), 200);
  t.throws(() => { group.heartbeat(a, 1, 250); }, { code: 'REBALANCE_IN_PROGRESS' }, 'the old member is told to join again');
  const rejoinA = group.join(request(a), 260);
  const [second, secondB] = await Promise.all([rejoinA, joinB]);
  t.equal(second.generationId, 2, 'every member joined: the generation completes without waiting');
  t.equal(second.leader, a, 'the leader stays the leader');
  t.equal(secondB.generationId, 2);
  await Promise.all([group.sync(a, 2, [{ memberId: a, assignment: Buffer.from('x') }, { memberId: b, assignment: Buffer.from('y') }], 300), group.sync(b, 2, [], 300)]);

  // b stops heartbeating; a third member joins; a rejoins; b misses the rebalance timeout.
  const c = await newMemberId(group, 400);
  const joinC = group.join(request(c), 400);
  const rejoin = group.join(request(a), 410);
  const timeoutMs = 5000;
  group.tick(400 + timeoutMs - 1);
  t.equal(group.state, 'PreparingRebalance', 'still waiting for b');
  group.tick(400 + timeoutMs);
  const [third, thirdC] = await Promise.all([rejoin, joinC]);
  t.equal(third.generationId, 3);
  t.same(third.members.map((m) => m.memberId), [a, c], 'b is gone');
  t.equal(thirdC.memberId, c);
  t.throws(() => { group.heartbeat(b, 2, 5500); }, { code: 'UNKNOWN_MEMBER_ID' });
});

void t.test('sessions expire; leaving rebalances; an empty group bumps its generation and takes outside commits', async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0);
  const b = await newMemberId(group, 0);
  const joins = [group.join(request(a), 0), group.join(request(b), 0)];
  group.tick(limits.initialRebalanceDelayMs);
  await Promise.all(joins);
  await Promise.all([group.sync(a, 1, [{ memberId: a, assignment: Buffer.from('1') }, { memberId: b, assignment: Buffer.from('2') }], 100), group.sync(b, 1, [], 100)]);
  group.heartbeat(a, 1, 5000);
  group.tick(10_100);
  t.equal(group.size, 1, "b's session expired");
  t.equal(group.state, 'PreparingRebalance');
  const rejoined = await group.join(request(a), 10_200);
  t.equal(rejoined.generationId, 2, 'the one left forms the next generation alone');
  t.same(group.leave([a, 'nobody'], 10_300).map((e) => (e === null ? null : code(e))), [null, 'UNKNOWN_MEMBER_ID']);
  t.equal(group.state, 'Empty');
  t.equal(group.generationId, 3);
  t.doesNotThrow(() => { group.checkCommit('', -1); }, 'a consumer outside any group commits to an empty group');
  t.equal(group.nextDeadlineMs(), null, 'nothing left to time');
});

void t.test('protocols: the one most members prefer among those all support; none shared is refused', async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0, ['roundrobin', 'range']);
  const b = await newMemberId(group, 0, ['range', 'roundrobin']);
  const c = await newMemberId(group, 0, ['roundrobin']);
  const joins = [group.join(request(a, ['roundrobin', 'range']), 0), group.join(request(b, ['range', 'roundrobin']), 0), group.join(request(c, ['roundrobin']), 0)];
  group.tick(limits.initialRebalanceDelayMs);
  const answers: ClassicJoinAnswer[] = await Promise.all(joins);
  t.ok(answers.every((answer) => answer.protocolName === 'roundrobin'), 'roundrobin: supported by all, preferred by two');
  await t.rejects(group.join(request('', ['sticky']), 200), { code: 'INCONSISTENT_GROUP_PROTOCOL' });
  await t.rejects(group.join(request('', ['roundrobin'], { protocolType: 'connect' }), 200), { code: 'INCONSISTENT_GROUP_PROTOCOL' });
  await t.rejects(group.join(request('', ['roundrobin'], { sessionTimeoutMs: 10 }), 200), { code: 'INVALID_SESSION_TIMEOUT' });
  await t.rejects(group.join(request('unknown-id'), 200), { code: 'UNKNOWN_MEMBER_ID' });
});

void t.test('JoinGroup v0-v3: a new member joins in one step; an unchanged rejoin gets the current generation', async (t) => {
  const group = new ClassicGroup('g', limits);
  // The same metadata whatever the member id (request() puts the id in it).
  const range = { protocols: [{ name: 'range', metadata: Buffer.from('range-meta') }] };
  const joining = group.join(request('', ['range'], { ...range, requireKnownMemberId: false }), 0);
  group.tick(limits.initialRebalanceDelayMs);
  const answer = await joining;
  t.equal(answer.generationId, 1);
  t.equal(answer.leader, answer.memberId);
  const other = group.join(request('', ['range'], { ...range, requireKnownMemberId: false }), 200);
  const leaderAgain = group.join(request(answer.memberId, ['range'], range), 210);
  const [second] = await Promise.all([leaderAgain, other]);
  t.equal(second.generationId, 2);
  await group.sync(answer.memberId, 2, [], 300);
  const follower = group.describe().members.find((m) => m.memberId !== answer.memberId)?.memberId ?? '';
  const unchanged = await group.join(request(follower, ['range'], range), 400);
  t.equal(unchanged.generationId, 2, "a follower's unchanged rejoin does not start a rebalance");
  t.equal(group.state, 'Stable');
  t.same(group.describe().members.find((m) => m.memberId === follower)?.metadata, Buffer.from('range-meta'));
  t.same(group.describe().members.map((m) => m.memberId).sort(), [answer.memberId, follower].sort());
  t.ok(group.describe().members.every((m) => m.memberId.length > 0));
  t.equal(group.describe().protocol, 'range');
});

/** Two members in a stable generation 1, a leading and assigning. */
async function stableGroup(group: ClassicGroup): Promise<{ a: string; b: string }> {
  const a = await newMemberId(group, 0);
  const joinA = group.join(request(a), 0);
  const b = await newMemberId(group, 0);
  const joinB = group.join(request(b), 0);
  group.tick(limits.initialRebalanceDelayMs);
  await Promise.all([joinA, joinB]);
  const syncB = group.sync(b, 1, [], 200);
  await group.sync(a, 1, [{ memberId: a, assignment: Buffer.from('A') }, { memberId: b, assignment: Buffer.from('B') }], 200);
  await syncB;
  return { a, b };
}

void t.test('a stable group restored by a new coordinator goes on stable: same generation, leader, protocol, assignments', async (t) => {
  const old = new ClassicGroup('g', limits);
  const { a, b } = await stableGroup(old);
  const persisted = JSON.parse(JSON.stringify(old.persisted())) as ReturnType<ClassicGroup['persisted']>;
  const taken = new ClassicGroup('g', limits);
  taken.restore(persisted, 5000);
  t.equal(taken.state, 'Stable');
  t.equal(taken.generationId, 1);
  t.doesNotThrow(() => { taken.heartbeat(b, 1, 5100); }, 'members heartbeat the new coordinator');
  t.same(await taken.sync(b, 1, [], 5100), Buffer.from('B'), 'and get their assignment back');
  t.doesNotThrow(() => { taken.checkCommit(a, 1); }, 'and commit in their generation');
  t.same(taken.describe(), old.describe(), 'described alike');
  t.same(taken.persisted(), old.persisted(), 'persisted alike');
  taken.tick(5100 + 10_001);
  t.equal(taken.size, 0, 'sessions restart at the restore and expire without heartbeats');
});

void t.test('a group caught mid-rebalance is restored rebalancing; members that do not join again are dropped', async (t) => {
  const old = new ClassicGroup('g', limits);
  const { a, b } = await stableGroup(old);
  const c = await newMemberId(old, 300);
  void old.join(request(c), 300).catch(() => undefined);
  t.equal(old.state, 'PreparingRebalance');
  const taken = new ClassicGroup('g', limits);
  taken.restore(old.persisted(), 1000);
  t.equal(taken.state, 'PreparingRebalance');
  t.throws(() => { taken.heartbeat(a, 1, 1000); }, { code: 'REBALANCE_IN_PROGRESS' }, 'members are told to join again');
  const joinA = taken.join(request(a), 1100);
  const joinB = taken.join(request(b), 1100);
  taken.tick(1000 + 5000);
  const [answerA, answerB] = await Promise.all([joinA, joinB]);
  t.equal(answerA.generationId, 2, 'the next generation');
  t.equal(answerB.generationId, 2);
  t.equal(taken.size, 2, 'c, which did not join the new coordinator, is out');
});

void t.test('abandon fails every waiting join and sync; member ids come from the given function and never repeat', async (t) => {
  let next = 0;
  const ids = ['x', 'x', 'y'];
  const group = new ClassicGroup('g', limits, (clientId) => `${clientId}-${ids[next++] ?? 'z'}`);
  const a = await newMemberId(group, 0);
  t.equal(a, 'c-x');
  const waiting = group.join(request(a), 0);
  const b = await newMemberId(group, 0);
  t.equal(b, 'c-y', 'an id already handed out is not given twice');
  group.abandon(new DriftwoodError('NOT_COORDINATOR', 'moved'));
  await t.rejects(waiting, { code: 'NOT_COORDINATOR' });
});

void t.test('new members joining during a rebalance do not push its deadline on', async (t) => {
  const group = new ClassicGroup('g', limits);
  const { a } = await stableGroup(group);
  const first = group.join(request(a, ['roundrobin', 'range']), 1000); // changed protocols: a rebalance, deadline 1000 + 5000
  t.equal(group.state, 'PreparingRebalance');
  // b never joins again; newcomers keep arriving (as clients restarting after a timed-out join do).
  const joins: Array<Promise<ClassicJoinAnswer>> = [];
  for (const at of [2000, 4000, 5500]) {
    const id = await newMemberId(group, at);
    joins.push(group.join(request(id), at));
  }
  group.tick(5999);
  t.equal(group.state, 'PreparingRebalance', 'not before the deadline');
  group.tick(6000);
  const answer = await first;
  t.equal(answer.generationId, 2, 'the generation forms at the deadline set when the rebalance began');
  t.equal(group.size, 4, 'without b, which did not join again');
  t.equal((await Promise.all(joins)).length, 3);
});

// Found by test/group/classic-group.property.test.ts (seed -348676838): the first sync was
// overwritten by the second and never answered, holding up its connection for good.
void t.test('a member that syncs twice while its leader has not: the older sync is answered too', { timeout: 5000 }, async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0);
  const joinA = group.join(request(a), 0);
  const b = await newMemberId(group, 0);
  const joinB = group.join(request(b), 0);
  group.tick(limits.initialRebalanceDelayMs);
  await Promise.all([joinA, joinB]);
  const first = group.sync(b, 1, [], 200);
  const second = group.sync(b, 1, [], 300);
  await t.rejects(first, { code: 'REBALANCE_IN_PROGRESS' }, 'the older one is told to join again');
  t.equal(group.state, 'CompletingRebalance', 'without a rebalance');
  const rejoined = await group.join(request(b), 310);
  t.equal(rejoined.generationId, 1, 'which answers at once in the same generation');
  await group.sync(a, 1, [{ memberId: a, assignment: Buffer.from('A') }, { memberId: b, assignment: Buffer.from('B') }], 400);
  t.same(await second, Buffer.from('B'), 'the newer one gets the assignment');
});

// Found by test/group/classic-group.property.test.ts (seed 287711296): the group kept its
// type and answered the member with it.
void t.test("a group's only member cannot switch protocol type; an empty group takes any", { timeout: 5000 }, async (t) => {
  const group = new ClassicGroup('g', limits);
  const a = await newMemberId(group, 0);
  const joinA = group.join(request(a, ['range'], { protocolType: 'connect' }), 0);
  group.tick(limits.initialRebalanceDelayMs);
  t.equal((await joinA).protocolType, 'connect');
  await t.rejects(group.join(request(a, ['range']), 200), { code: 'INCONSISTENT_GROUP_PROTOCOL' });
  t.equal(group.describe().protocolType, 'connect');
  group.leave([a], 300);
  const b = await newMemberId(group, 400);
  const joinB = group.join(request(b, ['range']), 400);
  group.tick(400 + limits.initialRebalanceDelayMs);
  t.equal((await joinB).protocolType, 'consumer', 'once empty, the next member sets the type');
});

void t.test('member ids handed out and not yet joined with count against membersMax, until they expire', async (t) => {
  const group = new ClassicGroup('g', { ...limits, membersMax: 2 });
  await newMemberId(group, 0);
  await newMemberId(group, 0);
  await t.rejects(group.join(request(''), 0), { code: 'GROUP_MAX_SIZE_REACHED' }, 'a third id is not handed out');
  group.tick(10_000);
  t.ok(await newMemberId(group, 10_000), 'once the unused ids expire (a session timeout), ids are handed out again');
});
