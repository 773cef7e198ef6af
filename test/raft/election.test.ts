// Roles and transitions: follower, preCandidate, candidate, leader, observer; vote rules;
// randomized timeouts; pre-vote; check-quorum; leader stickiness; stale leaders.
import t from 'tap';
import type { RaftRng } from '../../raft/types.js';
import { bytes, entries, flush, lone, Network, ofType, storeWith } from './harness.js';

void t.test('follower: on election timeout becomes preCandidate without bumping its term', (t) => {
  const node = lone(1, [1, 2, 3], { config: { observers: [4] }, store: storeWith([1, 1], { term: 1 }) });
  for (let i = 0; i < 9; i++) node.raft.tick();
  t.equal(node.raft.role, 'follower', 'not before electionTicks');
  node.raft.tick();
  t.equal(node.raft.role, 'preCandidate');
  t.equal(node.raft.term, 1, 'a pre-vote round changes no term');
  const rd = node.raft.ready();
  t.equal(rd.hardState, null, 'nothing to persist');
  t.same(rd.softState, { leader: 0, role: 'preCandidate' });
  const preVotes = ofType(rd.messages, 'preVote');
  t.same(preVotes.map((m) => m.to), [2, 3], 'voters only, never observers');
  t.same(preVotes.map((m) => [m.term, m.lastIndex, m.lastTerm]), [[2, 2, 1], [2, 2, 1]], 'the term it would use');
  node.raft.advance();
  t.end();
});

void t.test('follower without pre-vote: becomes candidate, bumps its term and votes for itself', (t) => {
  const node = lone(1, [1, 2, 3], { config: { preVote: false } });
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.equal(node.raft.role, 'candidate');
  t.equal(node.raft.term, 1);
  const rd = node.raft.ready();
  t.same(rd.hardState, { term: 1, vote: 1, commit: 0 }, 'the self-vote is persisted with the requests');
  t.same(ofType(rd.messages, 'vote').map((m) => [m.to, m.term, m.transfer]), [[2, 1, false], [3, 1, false]]);
  node.raft.advance();
  t.end();
});

void t.test('preCandidate -> candidate -> leader', (t) => {
  const node = lone(1, [1, 2, 3], { config: { observers: [4] } });
  for (let i = 0; i < 10; i++) node.raft.tick();
  flush(node);
  node.raft.step({ type: 'preVoteResponse', from: 2, to: 1, term: 1, granted: true });
  t.equal(node.raft.role, 'candidate', 'a majority of pre-votes');
  t.equal(node.raft.term, 1);
  const votes = ofType(flush(node), 'vote');
  t.same(votes.map((m) => m.to), [2, 3]);
  node.raft.step({ type: 'preVoteResponse', from: 3, to: 1, term: 1, granted: true });
  t.equal(node.raft.role, 'candidate', 'a late pre-vote answer changes nothing');
  node.raft.step({ type: 'voteResponse', from: 3, to: 1, term: 1, granted: true });
  t.equal(node.raft.role, 'leader');
  t.equal(node.raft.leader, 1);
  const rd = node.raft.ready();
  t.same(rd.entries.map((e) => [e.index, e.term, e.type]), [[1, 1, 'noop']], 'a new leader appends a noop');
  t.same(rd.softState, { leader: 1, role: 'leader' });
  t.same(ofType(rd.messages, 'append').map((m) => m.to), [2, 3, 4], 'appends to voters and observers');
  node.raft.advance();
  t.end();
});

void t.test('candidate: a majority of rejections makes it a follower', (t) => {
  const node = lone(1, [1, 2, 3], { config: { preVote: false } });
  for (let i = 0; i < 10; i++) node.raft.tick();
  flush(node);
  node.raft.step({ type: 'voteResponse', from: 2, to: 1, term: 1, granted: false });
  t.equal(node.raft.role, 'candidate', 'one rejection leaves the election open');
  node.raft.step({ type: 'voteResponse', from: 3, to: 1, term: 1, granted: false });
  t.equal(node.raft.role, 'follower');
  t.equal(node.raft.term, 1);
  t.end();
});

void t.test('candidate: an append of its term from the winner makes it a follower', (t) => {
  const node = lone(1, [1, 2, 3], { config: { preVote: false } });
  for (let i = 0; i < 10; i++) node.raft.tick();
  flush(node);
  node.raft.step({ type: 'append', from: 2, to: 1, term: 1, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 });
  t.equal(node.raft.role, 'follower');
  t.equal(node.raft.leader, 2);
  t.same(ofType(flush(node), 'appendResponse').map((m) => [m.to, m.success]), [[2, true]]);
  t.end();
});

void t.test('any role: a higher term makes it a follower of that term', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  t.equal(net.raft(1).role, 'leader');
  net.raft(1).step({ type: 'heartbeat', from: 3, to: 1, term: 5, commit: 0, context: 0 });
  t.equal(net.raft(1).role, 'follower');
  t.equal(net.raft(1).term, 5);
  t.equal(net.raft(1).leader, 3);
  net.raft(2).step({ type: 'voteResponse', from: 3, to: 2, term: 7, granted: false });
  t.equal(net.raft(2).term, 7, 'even from a response');
  t.equal(net.raft(2).leader, 0);
  t.end();
});

void t.test('a single voter elects itself and commits alone', (t) => {
  const node = lone(1, [1]);
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.equal(node.raft.role, 'leader');
  t.equal(node.raft.term, 1);
  flush(node);
  t.equal(node.raft.commitIndex, 1, 'the noop commits once persisted');
  t.equal(node.raft.propose(bytes('x')), 2);
  flush(node);
  t.same(node.applied.map((a) => a.data), ['', 'x']);
  t.end();
});

void t.test('votes: up to date, one per term, remembered across restarts', (t) => {
  const node = lone(1, [1, 2, 3], { store: storeWith([1, 2], { term: 2 }) });
  const vote = (from: number, term: number, lastIndex: number, lastTerm: number) => {
    node.raft.step({ type: 'vote', from, to: 1, term, lastIndex, lastTerm, transfer: false });
    return ofType(flush(node), 'voteResponse').map((m) => [m.to, m.term, m.granted]);
  };
  t.same(vote(2, 3, 1, 2), [[2, 3, false]], 'a shorter log of the same last term is behind');
  t.same(vote(2, 3, 5, 1), [[2, 3, false]], 'a lower last term is behind whatever the length');
  t.same(vote(2, 3, 2, 2), [[2, 3, true]], 'as up to date: granted');
  t.same(vote(3, 3, 9, 9), [[3, 3, false]], 'a second candidate in the same term is refused');
  t.same(vote(2, 3, 2, 2), [[2, 3, true]], 'the same candidate again is granted again');
  t.same(node.store.hardState, { term: 3, vote: 2, commit: 0 }, 'the vote is durable');
  node.restart();
  t.same(vote(3, 3, 9, 9), [[3, 3, false]], 'after a restart the vote still holds');
  t.same(vote(3, 4, 9, 9), [[3, 4, true]], 'a new term frees the vote');
  t.end();
});

void t.test('randomized election timeout in [electionTicks, 2 * electionTicks) from the rng', (t) => {
  const asked: number[] = [];
  const rng: RaftRng = {
    int: (max) => {
      asked.push(max);
      return 7;
    },
  };
  const node = lone(1, [1, 2, 3], { rng });
  t.same(asked, [10], 'jitter drawn from [0, electionTicks)');
  for (let i = 0; i < 16; i++) node.raft.tick();
  t.equal(node.raft.role, 'follower');
  node.raft.tick();
  t.equal(node.raft.role, 'preCandidate', 'after 10 + 7 ticks');
  t.throws(() => lone(1, [1, 2, 3], { rng: { int: () => 10 } }), 'an rng out of range is a bug');
  t.end();
});

void t.test('observers: never vote, never campaign, never count; they replicate', (t) => {
  const net = Network.create([1, 2, 3], { observers: [4, 5] });
  for (let i = 0; i < 100; i++) net.tick(4);
  t.equal(net.raft(4).role, 'observer', 'never campaigns');
  t.equal(net.raft(4).term, 0);
  net.raft(4).step({ type: 'vote', from: 1, to: 4, term: 3, lastIndex: 9, lastTerm: 9, transfer: true });
  net.raft(4).step({ type: 'preVote', from: 1, to: 4, term: 3, lastIndex: 9, lastTerm: 9 });
  t.same(flush(net.node(4)), [], 'ignores vote requests');
  t.equal(net.raft(4).term, 0, 'and their terms');
  net.elect(1);
  net.propose(1, 'a');
  net.stabilize();
  t.same(net.node(5).applied.map((a) => a.data), ['', 'a'], 'observers apply the log');
  t.equal(net.raft(5).leader, 1);
  t.equal(net.raft(5).role, 'observer');
  // With both other voters down, observers' acknowledgements commit nothing...
  net.crash(2);
  net.crash(3);
  net.propose(1, 'b');
  net.stabilize();
  t.equal(net.raft(1).commitIndex, 2, 'observers do not count for commit');
  t.equal(net.raft(4).lastIndex, 3, 'though they hold the entry');
  // ...and do not keep the leader in office (the first check may still count answers from
  // before the crash; the second cannot).
  for (let i = 0; i < 20; i++) {
    net.tick(1);
    net.stabilize();
  }
  t.equal(net.raft(1).role, 'follower', 'check-quorum ignores observers');
  t.end();
});

void t.test('pre-vote: a partitioned node does not disrupt the cluster when it returns', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < 50; i++) {
    net.tickAll();
    net.stabilize();
  }
  t.equal(net.raft(3).role, 'preCandidate');
  t.equal(net.raft(3).term, 1, 'pre-vote rounds do not bump its term');
  net.heal();
  net.tick(3, 20);
  net.stabilize();
  t.equal(net.raft(1).role, 'leader', 'the leader stays');
  t.equal(net.raft(1).term, 1);
  net.tickAll();
  net.stabilize();
  t.equal(net.raft(3).role, 'follower', 'the returning node follows');
  t.equal(net.raft(3).leader, 1);
  t.end();
});

void t.test('pre-vote: granted only to an up-to-date log and outside a leader lease', (t) => {
  const node = lone(1, [1, 2, 3], { store: storeWith([1, 2], { term: 2 }) });
  const preVote = (term: number, lastIndex: number, lastTerm: number) => {
    node.raft.step({ type: 'preVote', from: 2, to: 1, term, lastIndex, lastTerm });
    return ofType(flush(node), 'preVoteResponse').map((m) => [m.term, m.granted]);
  };
  t.same(preVote(3, 1, 2), [[2, false]], 'behind: refused, with our term');
  t.same(preVote(3, 2, 2), [[3, true]], 'granted, with the requested term');
  t.same(node.store.hardState, { term: 2, vote: 0, commit: 0 }, 'granting a pre-vote changes neither term nor vote');
  node.raft.step({ type: 'heartbeat', from: 3, to: 1, term: 2, commit: 0, context: 0 });
  flush(node);
  t.same(preVote(3, 2, 2), [], 'hearing from a leader: ignored');
  t.same(preVote(1, 2, 2), [[2, false]], 'a pre-vote below our term is refused, so the sender learns our term');
  t.end();
});

void t.test('pre-vote: a rejection carrying a higher term turns the preCandidate into a follower', (t) => {
  const node = lone(1, [1, 2, 3], { store: storeWith([1], { term: 1 }) });
  node.raft.tick();
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.equal(node.raft.role, 'preCandidate');
  node.raft.step({ type: 'preVoteResponse', from: 2, to: 1, term: 5, granted: false });
  t.equal(node.raft.role, 'follower');
  t.equal(node.raft.term, 5);
  t.end();
});

void t.test('check-quorum: an isolated leader steps down after an election timeout', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  for (let i = 0; i < 30; i++) {
    net.tick(1);
    net.stabilize();
  }
  t.equal(net.raft(1).role, 'leader', 'a leader that hears from its followers stays');
  net.isolate(1);
  for (let i = 0; i < 9; i++) net.tick(1);
  net.stabilize();
  t.equal(net.raft(1).role, 'leader', 'not before the timeout');
  for (let i = 0; i < 11; i++) net.tick(1);
  t.equal(net.raft(1).role, 'follower');
  t.equal(net.raft(1).term, 1);
  t.equal(net.raft(1).leader, 0);
  t.end();
});

void t.test('stickiness: a follower with a live leader ignores vote requests unless transfer', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.raft(2).step({ type: 'vote', from: 3, to: 2, term: 2, lastIndex: 5, lastTerm: 5, transfer: false });
  t.same(flush(net.node(2)), [], 'ignored outright');
  t.equal(net.raft(2).term, 1, 'term unchanged');
  net.raft(2).step({ type: 'vote', from: 3, to: 2, term: 2, lastIndex: 5, lastTerm: 5, transfer: true });
  t.same(ofType(flush(net.node(2)), 'voteResponse').map((m) => [m.term, m.granted]), [[2, true]], 'a transfer bypasses the lease');
  // Once the leader has been silent for an election timeout, the lease is over.
  const net2 = Network.create([1, 2, 3]);
  net2.elect(1);
  net2.tick(2, 10);
  net2.raft(2).step({ type: 'vote', from: 3, to: 2, term: 2, lastIndex: 5, lastTerm: 5, transfer: false });
  t.equal(net2.raft(2).term, 2, 'no lease: the request is considered');
  t.end();
});

void t.test('without check-quorum, votes are not held back by a lease', (t) => {
  const net = Network.create([1, 2, 3], { config: { checkQuorum: false, preVote: false } });
  net.elect(1);
  net.raft(2).step({ type: 'vote', from: 3, to: 2, term: 2, lastIndex: 5, lastTerm: 5, transfer: false });
  t.same(ofType(flush(net.node(2)), 'voteResponse').map((m) => [m.term, m.granted]), [[2, true]]);
  t.end();
});

void t.test('a stale leader learns the new term from the answer to its append', (t) => {
  const net = Network.create([1, 2, 3], { seed: 5 });
  net.elect(1);
  net.isolate(1);
  for (let i = 0; i < 60; i++) {
    net.tickAll();
    net.stabilize();
  }
  const newLeader = net.leaders().find((id) => id !== 1);
  t.ok(newLeader !== undefined, 'the majority elected a new leader');
  t.not(net.raft(1).role, 'leader', 'the old leader stepped down by check-quorum');
  t.equal(net.raft(1).term, 1, 'and, alone, stays in its term (pre-vote)');
  // An old leader (term 1) that still sends: the answer carries the new term.
  const node2 = net.node(2);
  node2.raft.step({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 0, context: 0 });
  const answers = ofType(flush(node2), 'appendResponse');
  t.same(answers.map((m) => [m.to, m.term > 1, m.success]), [[1, true, false]]);
  t.end();
});

void t.test('stale and foreign messages are ignored', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  const node = net.node(2);
  node.raft.step({ type: 'append', from: 9, to: 2, term: 9, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 });
  node.raft.step({ type: 'append', from: 1, to: 3, term: 9, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 });
  node.raft.step({ type: 'voteResponse', from: 3, to: 2, term: 1, granted: true });
  node.raft.step({ type: 'timeoutNow', from: 3, to: 2, term: 0 });
  t.equal(node.raft.term, 1);
  t.equal(node.raft.role, 'follower');
  t.same(flush(node), []);
  t.end();
});

void t.test('an append from an older term never touches the log', (t) => {
  const node = lone(2, [1, 2, 3], { store: storeWith([1, 2, 2], { term: 2, commit: 1 }) });
  node.raft.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 1, prevTerm: 1, entries: entries(2, [1, 1, 1]), commit: 4 });
  const answers = flush(node);
  t.same(node.store.entries.map((e) => e.term), [1, 2, 2], 'no truncation by a deposed leader');
  t.equal(node.raft.commitIndex, 1);
  t.equal(node.raft.leader, 0, 'not taken for the leader');
  t.same(ofType(answers, 'appendResponse').map((m) => [m.to, m.term, m.success]), [[1, 2, false]], 'told the new term instead');
  t.end();
});
