// ReadIndex (thesis §6.4): a read is answered with the commit index the leader had when the
// read arrived, once a majority of voters confirmed the leader by a later heartbeat round.
import t from 'tap';
import { flush, lone, Network, ofType } from './harness.js';

void t.test('the leader confirms itself with a heartbeat round, then answers', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.stabilize();
  t.ok(net.raft(1).readIndex(7));
  net.process(1);
  const beats = ofType(net.drain(), 'heartbeat');
  t.same(beats.map((m) => [m.to, m.context]), [[2, 7], [3, 7]], 'the round carries the request id');
  t.same(net.node(1).readStates, [], 'not before a majority answered');
  for (const m of beats) net.deliver(m);
  net.stabilize();
  t.same(net.node(1).readStates, [{ requestId: 7, index: 2 }], 'index = the commit index at the request');
  t.end();
});

void t.test('only a leader serves reads', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  t.notOk(net.raft(2).readIndex(1));
  t.throws(() => net.raft(1).readIndex(0), /positive/);
  t.end();
});

void t.test('a new leader defers reads until it committed an entry of its term', (t) => {
  const node = lone(1, [1, 2, 3]);
  while (node.raft.role !== 'preCandidate') node.raft.tick();
  node.raft.step({ type: 'preVoteResponse', from: 2, to: 1, term: 1, granted: true });
  node.raft.step({ type: 'voteResponse', from: 2, to: 1, term: 1, granted: true });
  t.equal(node.raft.role, 'leader');
  t.ok(node.raft.readIndex(5), 'accepted...');
  t.same(ofType(flush(node), 'heartbeat'), [], '...but no round before the noop commits');
  node.raft.step({ type: 'appendResponse', from: 2, to: 1, term: 1, success: true, index: 1, hintIndex: 0, hintTerm: 0 });
  t.equal(node.raft.commitIndex, 1, 'the noop committed');
  const beats = ofType(flush(node), 'heartbeat').filter((m) => m.context === 5);
  t.same(beats.map((m) => m.to), [2, 3], 'now the round goes out');
  node.raft.step({ type: 'heartbeatResponse', from: 3, to: 1, term: 1, context: 5 });
  flush(node);
  t.same(node.readStates, [{ requestId: 5, index: 1 }]);
  t.end();
});

void t.test('an isolated leader never confirms a read, and drops it when it steps down', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  t.ok(net.raft(1).readIndex(9));
  for (let i = 0; i < 25; i++) {
    net.tick(1);
    net.stabilize();
  }
  t.equal(net.raft(1).role, 'follower');
  net.heal();
  net.stabilize();
  t.same(net.node(1).readStates, []);
  t.end();
});

void t.test("observers' answers do not confirm a read", (t) => {
  const net = Network.create([1, 2, 3], { observers: [4, 5] });
  net.elect(1);
  net.crash(2);
  net.crash(3);
  t.ok(net.raft(1).readIndex(3));
  net.stabilize();
  t.same(net.node(1).readStates, []);
  t.end();
});

void t.test('confirming a later read confirms the earlier ones', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  t.ok(net.raft(1).readIndex(1));
  t.ok(net.raft(1).readIndex(2));
  net.process(1);
  const beats = ofType(net.drain(), 'heartbeat').filter((m) => m.context === 2);
  for (const m of beats) net.deliver(m);
  net.stabilize();
  t.same(net.node(1).readStates.map((r) => r.requestId), [1, 2]);
  t.end();
});

void t.test('a single voter answers reads without a round', (t) => {
  const node = lone(1, [1]);
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.ok(node.raft.readIndex(1), 'deferred until the noop commits');
  flush(node);
  t.same(node.readStates, [{ requestId: 1, index: 1 }]);
  t.ok(node.raft.readIndex(2));
  flush(node);
  t.same(node.readStates.at(-1), { requestId: 2, index: 1 });
  t.end();
});

void t.test('a read needs a majority of voters, not just some', (t) => {
  const net = Network.create([1, 2, 3, 4, 5]);
  net.elect(1);
  for (const id of [3, 4, 5]) net.crash(id);
  t.ok(net.raft(1).readIndex(4));
  net.stabilize();
  t.same(net.node(1).readStates, [], 'the leader and one follower are two of five');
  net.restart(3);
  net.tick(1);
  net.stabilize();
  t.ok(net.raft(1).readIndex(6));
  net.stabilize();
  t.same(net.node(1).readStates.map((r) => r.requestId), [4, 6], 'three of five: both confirmed');
  t.end();
});
