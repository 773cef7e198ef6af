// Observers changed at runtime (setObservers): a node joining a running cluster as a
// non-voting member. The leader replicates to an added observer (entries or a snapshot),
// stops for a removed one, elections and commits ignore observers, and a new leader picks up
// observers set before or after its election.
import t from 'tap';
import { emptyStore, makeConfig, Network, ofType, TestNode, zeroRng } from './harness.js';

/** Three voters with node 1 leading and 'a' committed, plus node 4 started as a joiner (observer of itself only). */
function clusterWithJoiner(): Network {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.stabilize();
  net.nodes.set(4, new TestNode(makeConfig(4, [1, 2, 3], { observers: [4] }), emptyStore(), zeroRng));
  return net;
}

function appliedData(net: Network, id: number): string[] {
  return net.node(id).applied.map((a) => a.data);
}

void t.test('the leader replicates to an observer added at runtime', (t) => {
  const net = clusterWithJoiner();
  net.tickAll(3);
  net.stabilize();
  t.same(appliedData(net, 4), [], 'nothing before the leader knows the observer');
  t.equal(net.raft(4).role, 'observer');
  net.raft(1).setObservers([4]);
  net.stabilize();
  t.same(appliedData(net, 4), ['', 'a'], 'the whole log once added');
  t.equal(net.raft(4).leader, 1, 'the observer learns the leader');
  t.equal(net.raft(1).status().progress?.[4]?.match, 2, 'the leader tracks its progress');
  net.propose(1, 'b');
  net.stabilize();
  t.same(appliedData(net, 4), ['', 'a', 'b'], 'and new entries');
  t.same(net.raft(1).members(), { voters: [1, 2, 3], observers: [4] });
  t.end();
});

void t.test('the leader stops replicating to a removed observer and ignores it', (t) => {
  const net = clusterWithJoiner();
  net.raft(1).setObservers([4]);
  net.stabilize();
  net.raft(1).setObservers([]);
  t.equal(net.raft(1).status().progress?.[4], undefined, 'no progress kept');
  net.propose(1, 'c');
  net.tickAll(3);
  const sent = net.drain();
  for (const m of sent) net.deliver(m);
  net.stabilize();
  t.same(appliedData(net, 4), ['', 'a'], 'no entry after the removal');
  // A late answer from the removed observer changes nothing.
  net.raft(1).step({ type: 'appendResponse', from: 4, to: 1, term: net.raft(1).term, success: true, index: 3, hintIndex: 0, hintTerm: 0 });
  t.equal(net.raft(1).status().progress?.[4], undefined);
  t.end();
});

void t.test('elections and commits ignore an added observer', (t) => {
  const net = clusterWithJoiner();
  net.raft(1).setObservers([4]);
  net.stabilize();
  for (let i = 0; i < 50; i++) net.tick(4);
  t.equal(net.raft(4).role, 'observer', 'never campaigns');
  // Node 1 hands leadership to node 2, which campaigns asking voters only.
  const asked = new Set<number>();
  net.onReady = (node, rd) => {
    if (node.id === 2) for (const m of rd.messages) if (m.type === 'vote' || m.type === 'preVote') asked.add(m.to);
  };
  t.ok(net.raft(1).transferLeadership(2));
  net.stabilize();
  t.equal(net.raft(2).role, 'leader');
  t.same([...asked].sort(), [1, 3], 'the observer is not asked for a vote');
  // With the other voters down, the observer's acknowledgement commits nothing.
  net.crash(1);
  net.crash(3);
  net.raft(2).setObservers([4]);
  const commit = net.raft(2).commitIndex;
  net.propose(2, 'x');
  net.stabilize();
  t.equal(net.raft(4).lastIndex, net.raft(2).lastIndex, 'the observer holds the entry');
  t.equal(net.raft(2).commitIndex, commit, 'but it does not count for the commit');
  for (let i = 0; i < 25; i++) {
    net.tick(2);
    net.stabilize();
  }
  t.equal(net.raft(2).role, 'follower', 'check-quorum does not count the observer');
  t.end();
});

void t.test('a new leader replicates to observers set before or after its election', (t) => {
  const net = clusterWithJoiner();
  net.raft(1).setObservers([4]);
  // Node 3 learned of the observer before the election, node 2 not yet.
  net.raft(3).setObservers([4]);
  net.stabilize();
  t.ok(net.raft(1).transferLeadership(2));
  net.stabilize();
  net.crash(1);
  t.equal(net.raft(2).role, 'leader');
  net.propose(2, 'after');
  net.stabilize();
  t.notOk(appliedData(net, 4).includes('after'), 'a leader that does not know the observer does not replicate to it');
  net.raft(2).setObservers([4]);
  net.stabilize();
  t.ok(appliedData(net, 4).includes('after'), 'set after its election: it does');
  t.equal(net.raft(4).leader, 2);
  // Node 3, which knew the observer all along, leads and replicates to it at once.
  net.restart(1);
  t.ok(net.raft(2).transferLeadership(3));
  net.stabilize();
  net.crash(2);
  t.equal(net.raft(3).role, 'leader');
  net.propose(3, 'third');
  net.stabilize();
  t.ok(appliedData(net, 4).includes('third'), 'set before its election: replicated from the start');
  t.equal(net.raft(4).leader, 3);
  t.end();
});

void t.test('an observer that joins after compaction gets the snapshot, which records the observers', (t) => {
  const net = clusterWithJoiner();
  for (let i = 0; i < 5; i++) net.propose(1, `e${i}`);
  net.stabilize();
  t.ok(net.node(1).compact(), 'the leader compacts its log');
  net.raft(1).setObservers([4]);
  net.stabilize();
  t.same(appliedData(net, 4), appliedData(net, 1), 'the observer holds the leader state');
  const installed = net.node(4).history.find((rd) => rd.snapshot !== null)?.snapshot;
  t.ok(installed !== undefined, 'through a snapshot');
  t.same(installed?.meta.observers, [], 'the snapshot names the observers of its time (none yet)');
  t.same(installed?.meta.voters, [1, 2, 3]);
  net.propose(1, 'more');
  net.stabilize();
  t.ok(net.node(1).compact());
  t.same(net.node(1).store.snapshot?.observers, [4], 'a snapshot taken since names the added observer');
  // A restart keeps it in step: it starts from its snapshot and the leader catches it up.
  net.restart(4);
  net.propose(1, 'later');
  net.stabilize();
  t.same(appliedData(net, 4), appliedData(net, 1), 'caught up after a restart');
  t.end();
});

void t.test('setObservers refuses a voter, a repeated id, and an observer dropping itself', (t) => {
  const net = clusterWithJoiner();
  t.throws(() => { net.raft(1).setObservers([2]); }, /is a voter/);
  t.throws(() => { net.raft(1).setObservers([4, 4]); }, /twice/);
  t.throws(() => { net.raft(1).setObservers([0]); }, /positive integer/);
  t.throws(() => { net.raft(4).setObservers([]); }, /cannot remove itself/);
  net.raft(4).setObservers([4, 5]);
  t.same(net.raft(4).members().observers, [4, 5]);
  t.same(ofType(net.drain(), 'append'), [], 'a non-leader sends nothing on a change');
  t.end();
});
