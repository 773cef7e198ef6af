// Leadership transfer (thesis §3.10): timeoutNow once the transferee is caught up, no
// proposals meanwhile, a vote that bypasses stickiness, and an abort after electionTicks.
import t from 'tap';
import { Network, ofType } from './harness.js';

void t.test('transfer to a caught-up follower: timeoutNow at once, it wins the next term', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  t.ok(net.raft(1).transferLeadership(2));
  net.process(1);
  const sent = net.drain();
  t.same(ofType(sent, 'timeoutNow').map((m) => m.to), [2]);
  for (const m of sent) net.deliver(m);
  t.equal(net.raft(2).role, 'candidate', 'campaigns at once, skipping pre-vote');
  net.process(2);
  const votes = ofType(net.drain(), 'vote');
  t.ok(votes.length === 2 && votes.every((m) => m.transfer), 'its vote requests say transfer');
  for (const m of votes) net.deliver(m);
  net.stabilize();
  t.equal(net.raft(2).role, 'leader', 'the followers in lease still voted (transfer bypasses stickiness)');
  t.equal(net.raft(2).term, 2);
  t.equal(net.raft(1).role, 'follower');
  t.equal(net.raft(1).leader, 2);
  t.end();
});

void t.test('transfer to a lagging follower: catch it up first, then timeoutNow', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.crash(3);
  net.propose(1, 'a');
  net.propose(1, 'b');
  net.stabilize();
  net.restart(3);
  t.ok(net.raft(1).transferLeadership(3));
  t.equal(net.propose(1, 'during'), null, 'no proposals while transferring');
  const order: string[] = [];
  net.filter = (m) => {
    if (m.from === 1 && m.to === 3 && (m.type === 'append' || m.type === 'timeoutNow')) order.push(m.type);
    return true;
  };
  net.stabilize();
  t.same(order.at(-1), 'timeoutNow', 'after the appends');
  t.ok(order.includes('append'));
  t.equal(net.raft(3).role, 'leader');
  t.same(net.node(3).applied.map((a) => a.data).slice(0, 3), ['', 'a', 'b']);
  t.end();
});

void t.test('a transfer that does not complete is abandoned after electionTicks', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.crash(3);
  t.ok(net.raft(1).transferLeadership(3));
  t.ok(net.raft(1).transferLeadership(3), 'asking again for the same node is fine');
  for (let i = 0; i < 9; i++) {
    net.tick(1);
    net.stabilize();
  }
  t.equal(net.propose(1, 'x'), null, 'still transferring');
  net.tick(1);
  t.equal(net.raft(1).role, 'leader');
  t.equal(net.propose(1, 'x'), 2, 'abandoned: proposals resume');
  t.end();
});

void t.test('only a leader transfers, only to another voter', (t) => {
  const net = Network.create([1, 2, 3], { observers: [4] });
  net.elect(1);
  t.notOk(net.raft(2).transferLeadership(3), 'not the leader');
  t.notOk(net.raft(1).transferLeadership(1), 'itself');
  t.notOk(net.raft(1).transferLeadership(4), 'an observer');
  t.notOk(net.raft(1).transferLeadership(9), 'unknown');
  // Node 2 lags (it is down), so the transfer to it waits for its catch-up...
  net.crash(2);
  net.propose(1, 'x');
  net.stabilize();
  t.ok(net.raft(1).transferLeadership(2));
  // ...and a transfer to node 3 replaces it.
  t.ok(net.raft(1).transferLeadership(3), 'a new target replaces the old one');
  net.stabilize();
  t.equal(net.raft(3).role, 'leader');
  t.end();
});

void t.test('an observer ignores timeoutNow', (t) => {
  const net = Network.create([1, 2, 3], { observers: [4] });
  net.elect(1);
  net.raft(4).step({ type: 'timeoutNow', from: 1, to: 4, term: 1 });
  t.equal(net.raft(4).role, 'observer');
  t.equal(net.raft(4).term, 1);
  t.end();
});
