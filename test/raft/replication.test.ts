// Log replication: the Raft paper's Figure 7 (a new leader brings divergent follower logs in
// line) and Figure 8 (a leader must not commit an entry of an older term by counting
// replicas), fast backtracking, the commit rules, durability before applying, flow control.
import t from 'tap';
import type { RaftBug, RaftRng } from '../../raft/types.js';
import { SafetyChecker } from './checker.js';
import { bytes, emptyStore, entries, flush, lone, makeConfig, Network, ofType, storeWith, TestNode, text, Violation, zeroRng } from './harness.js';

const maxJitter: RaftRng = { int: (max) => max - 1 };

/** Makes node `id` leader by ticking it, then lets `votes` (fake voters) elect it. */
function campaignWith(net: Network, id: number, voter: number): void {
  const raft = net.raft(id);
  while (raft.role !== 'preCandidate') raft.tick();
  raft.step({ type: 'preVoteResponse', from: voter, to: id, term: raft.term + 1, granted: true });
  raft.step({ type: 'voteResponse', from: voter, to: id, term: raft.term, granted: true });
}

void t.test('Figure 7: a new leader brings every kind of divergent follower in line', (t) => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, log] of Object.entries(followers)) {
    // Node 3 is down; its vote makes node 1 leader of term 8 (node 2 may be more up to date).
    const voters = [1, 2, 3];
    const leader = new TestNode(makeConfig(1, voters), storeWith(leaderLog, { term: 7, commit: 3 }), zeroRng);
    const follower = new TestNode(makeConfig(2, voters), storeWith(log, { term: Math.max(...log), commit: 3 }), zeroRng);
    const net = new Network([leader, follower, new TestNode(makeConfig(3, voters), emptyStore(), zeroRng)]);
    net.crash(3);
    campaignWith(net, 1, 3);
    t.equal(net.raft(1).role, 'leader', `${name}: elected`);
    t.equal(net.raft(1).term, 8);
    net.stabilize();
    const terms = (node: TestNode) => node.store.entries.map((e) => [e.index, e.term, text(e.data)]);
    t.same(terms(follower), terms(leader), `${name}: the follower's log equals the leader's`);
    t.equal(follower.store.entries.length, 11, `${name}: up to the leader's noop`);
    t.equal(net.raft(1).commitIndex, 11, `${name}: and the noop commits`);
    t.equal(net.raft(2).commitIndex, 11);
  }
  t.end();
});

/**
 * Figure 8. (a) S1 led term 2 and wrote entry 2 on S1 and S2; (b) S5 led term 3 and wrote its
 * own entry 2 on S5 only; (c) S1 leads term 4 and copies its entry 2 (term 2) to S3 and S4:
 * a majority holds it. If S1 counted that as committed, (d) S5 could still win term 5 (its
 * last term 3 beats S2-S4's 2) and overwrite entry 2 everywhere.
 */
function figure8(bugs: ReadonlySet<RaftBug> | undefined): { net: Network; checker: SafetyChecker; commitInTerm4: number } {
  const voters = [1, 2, 3, 4, 5];
  const config = (id: number) => {
    const c = makeConfig(id, voters, { maxEntriesPerAppend: 1 });
    if (bugs !== undefined) c.bugs = bugs;
    return c;
  };
  const stores = [storeWith([1, 2], { term: 3, commit: 1 }), storeWith([1, 2], { term: 3, commit: 1 }), storeWith([1], { term: 3, commit: 1 }), storeWith([1], { term: 3, commit: 1 }), storeWith([1, 3], { term: 3, commit: 1 })];
  const net = new Network(voters.map((id) => new TestNode(config(id), stores[id - 1] ?? emptyStore(), id === 1 || id === 5 ? zeroRng : maxJitter)));
  const checker = new SafetyChecker(net);
  // (c) S1 wins term 4 with S2, S3, S4; S2 and S5 receive no appends; S3 and S4 receive
  // entry 2 but not the noop (index 3), as when the messages carrying it are lost.
  // (The first append to S3 and S4, anchored at entry 2 which they lack, is let through: they
  // reject it and the leader backs up to send entry 2.)
  const probed = new Set<number>();
  net.filter = (m) => {
    if (m.type !== 'append' || m.from !== 1) return true;
    if (m.to === 2 || m.to === 5) return false;
    if (!probed.has(m.to)) {
      probed.add(m.to);
      return true;
    }
    return !m.entries.some((e) => e.index >= 3);
  };
  net.elect(1);
  checker.check();
  const commitInTerm4 = net.raft(1).commitIndex;
  // (d) S1 crashes; S5 campaigns once the others' leases ran out.
  net.filter = null;
  net.crash(1);
  for (const id of [2, 3, 4]) net.tick(id, 10);
  net.elect(5);
  checker.check();
  return { net, checker, commitInTerm4 };
}

void t.test('Figure 8: a leader does not commit an entry of an older term by counting', (t) => {
  const { net, commitInTerm4 } = figure8(undefined);
  t.equal(commitInTerm4, 1, 'entry 2 (term 2) is on a majority but not committed in term 4');
  t.same(net.node(3).history.flatMap((rd) => rd.entries.map((e) => [e.index, e.term])).slice(0, 1), [[2, 2]], 'S3 did hold entry 2 of term 2');
  t.equal(net.raft(5).role, 'leader');
  t.equal(net.raft(5).term, 5);
  t.same(net.node(3).store.entries.map((e) => e.term), [1, 3, 5], 'S5 overwrote the uncommitted entry 2 — safely');
  t.equal(net.raft(3).commitIndex, 3);
  t.end();
});

void t.test('Figure 8 catches raft-commit-old-term', (t) => {
  t.throws(() => figure8(new Set(['raft-commit-old-term'])), Violation, 'a committed entry is overwritten');
  try {
    figure8(new Set(['raft-commit-old-term']));
  } catch (error) {
    t.match(String(error), /applied .* where .* was applied|differs from the committed/, String(error));
  }
  t.end();
});

void t.test('fast backtracking: one probe per term, not one per entry', (t) => {
  // Follower has a long divergent tail of term 3; the leader's log after index 1 is term 2.
  const voters = [1, 2, 3];
  const leader = new TestNode(makeConfig(1, voters), storeWith([1, ...Array<number>(50).fill(2)], { term: 4, commit: 1 }), zeroRng);
  const follower = new TestNode(makeConfig(2, voters), storeWith([1, ...Array<number>(80).fill(3)], { term: 4, commit: 1 }), zeroRng);
  const net = new Network([leader, follower, new TestNode(makeConfig(3, voters), emptyStore(), zeroRng)]);
  net.crash(3);
  let rejections = 0;
  net.filter = (m) => {
    if (m.type === 'appendResponse' && !m.success) rejections++;
    return true;
  };
  campaignWith(net, 1, 3);
  net.stabilize();
  t.equal(net.node(2).store.entries.length, 52);
  t.same(net.node(2).store.entries.map((e) => e.term).slice(-2), [2, 5]);
  t.equal(rejections, 1, 'the follower hints past its whole term-3 tail at once');

  // The leader-side refinement: a follower behind by several terms.
  const leader2 = new TestNode(makeConfig(1, voters), storeWith([1, ...Array<number>(20).fill(3), ...Array<number>(20).fill(5)], { term: 6, commit: 1 }), zeroRng);
  const follower2 = new TestNode(makeConfig(2, voters), storeWith([1, ...Array<number>(30).fill(2)], { term: 6, commit: 1 }), zeroRng);
  const net2 = new Network([leader2, follower2, new TestNode(makeConfig(3, voters), emptyStore(), zeroRng)]);
  net2.crash(3);
  let rejections2 = 0;
  net2.filter = (m) => {
    if (m.type === 'appendResponse' && !m.success) rejections2++;
    return true;
  };
  campaignWith(net2, 1, 3);
  net2.stabilize();
  t.same(net2.node(2).store.entries.map((e) => e.term), net2.node(1).store.entries.map((e) => e.term));
  t.ok(rejections2 <= 2, `at most one probe per term (${rejections2} rejections)`);
  t.end();
});

void t.test("follower commit = min(leader's commit, last new entry)", (t) => {
  const node = lone(1, [1, 2, 3], { store: storeWith([1, 1, 1, 1, 1], { term: 1 }) });
  node.raft.step({ type: 'append', from: 2, to: 1, term: 2, prevIndex: 1, prevTerm: 1, entries: entries(2, [1]), commit: 5 });
  t.equal(node.raft.commitIndex, 2, 'entries 3..5 were not vouched for by this append');
  t.same(ofType(flush(node), 'appendResponse').map((m) => [m.success, m.index]), [[true, 2]]);
  node.raft.step({ type: 'append', from: 2, to: 1, term: 2, prevIndex: 3, prevTerm: 2, entries: [], commit: 5 });
  t.same(ofType(flush(node), 'appendResponse').map((m) => [m.success, m.index, m.hintIndex, m.hintTerm]), [[false, 3, 3, 1]], 'rejected with a hint');
  t.equal(node.raft.commitIndex, 2);
  node.raft.step({ type: 'append', from: 2, to: 1, term: 2, prevIndex: 1, prevTerm: 1, entries: [], commit: 9 });
  t.same(ofType(flush(node), 'appendResponse').map((m) => [m.success, m.index]), [[true, 2]], 'below our commit: answered with it');
  t.end();
});

void t.test('committed entries are applied only once durable locally', (t) => {
  const node = lone(2, [1, 2, 3]);
  node.raft.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries: entries(1, [1, 1]), commit: 2 });
  const first = node.raft.ready();
  t.same(first.entries.map((e) => e.index), [1, 2]);
  t.equal(first.hardState?.commit, 2);
  t.same(first.committed, [], 'not applied in the Ready that persists them');
  node.raft.advance();
  t.ok(node.raft.hasReady());
  const second = node.raft.ready();
  t.same(second.committed.map((e) => e.index), [1, 2], 'applied once advance() said they are durable');
  node.raft.advance();
  t.equal(node.raft.appliedIndex, 2);
  t.end();
});

void t.test("the leader's own entries count only after the driver persisted them", (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.crash(3);
  net.propose(1, 'x');
  const leader = net.node(1);
  leader.begin();
  const appends = (leader.pending?.messages ?? []).filter((m) => m.to === 2);
  // Follower 2 receives and acknowledges before the leader's driver called advance().
  for (const m of appends) net.raft(2).step(m);
  for (const m of flush(net.node(2))) net.raft(1).step(m);
  t.equal(net.raft(1).commitIndex, 1, 'a majority needs the leader itself, which has not persisted index 2');
  leader.complete();
  t.equal(net.raft(1).commitIndex, 2, 'advance() made it count');
  t.end();
});

void t.test('flow control: inflight window in replicate, one append at a time in probe', (t) => {
  const net = Network.create([1, 2, 3], { config: { maxInflightAppends: 2, maxEntriesPerAppend: 1 } });
  net.elect(1);
  net.cutLink(2, 1);
  net.crash(3);
  for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
  net.process(1);
  const toTwo = ofType(net.drain(), 'append').filter((m) => m.to === 2);
  t.equal(toTwo.length, 2, 'two appends in flight, then paused');
  t.same(toTwo.map((m) => m.entries.length), [1, 1], 'maxEntriesPerAppend');
  t.equal(net.raft(1).status().progress?.[2]?.state, 'replicate');
  // A heartbeat round trip frees the oldest slot: the follower may have lost it.
  net.heal();
  net.raft(1).step({ type: 'heartbeatResponse', from: 2, to: 1, term: 1, context: 0 });
  net.process(1);
  t.equal(ofType(net.drain(), 'append').filter((m) => m.to === 2).length, 1);
  t.end();
});

void t.test('maxBytesPerAppend limits an append but one big entry still goes', (t) => {
  const net = Network.create([1, 2, 3], { config: { maxBytesPerAppend: 100 } });
  net.elect(1);
  net.crash(2);
  net.raft(1).propose(new Uint8Array(500));
  net.raft(1).propose(new Uint8Array(10));
  net.raft(1).propose(new Uint8Array(10));
  net.stabilize();
  net.restart(2);
  const sizes: number[] = [];
  net.filter = (m) => {
    if (m.type === 'append' && m.to === 2 && m.entries.length > 0) sizes.push(m.entries.length);
    return true;
  };
  net.tick(1);
  net.stabilize();
  t.same(sizes, [1, 2], 'the big entry alone, then the two small ones together');
  t.equal(net.raft(2).commitIndex, 4);
  t.end();
});

void t.test('a leader ignores an append of its own term and never rewrites its log', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.raft(1).step({ type: 'append', from: 2, to: 1, term: 1, prevIndex: 0, prevTerm: 0, entries: entries(1, [1]), commit: 0 });
  t.equal(net.raft(1).role, 'leader');
  t.equal(net.raft(1).lastIndex, 1);
  t.equal(net.raft(1).propose(bytes('a')), 2);
  t.end();
});

void t.test('status reports progress on the leader', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  const status = net.raft(1).status();
  t.match(status, { id: 1, role: 'leader', term: 1, leader: 1, commit: 1, applied: 1, lastIndex: 1, lastTerm: 1 });
  t.same(status.progress?.[2], { match: 1, next: 2, state: 'replicate', recentActive: true });
  t.equal(net.raft(2).status().progress, undefined);
  t.end();
});
