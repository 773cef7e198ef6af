// The persistence contract: a response never appears in a Ready before the state it depends
// on; the Ready/advance protocol; the ABA race; and the deliberate bugs that break them.
import t from 'tap';
import type { Message, RaftBug } from '../../raft/types.js';
import { SafetyChecker } from './checker.js';
import { checkAcknowledgements, emptyStore, entries, flush, lone, Network, ofType, storeWith, Violation } from './harness.js';

void t.test('a granted vote leaves in the Ready that persists it', (t) => {
  const node = lone(2, [1, 2, 3]);
  node.raft.step({ type: 'vote', from: 1, to: 2, term: 3, lastIndex: 0, lastTerm: 0, transfer: false });
  const rd = node.raft.ready();
  t.same(rd.hardState, { term: 3, vote: 1, commit: 0 });
  t.same(ofType(rd.messages, 'voteResponse').map((m) => [m.term, m.granted]), [[3, true]]);
  node.raft.advance();
  t.end();
});

void t.test('an append acknowledgement leaves in the Ready that persists the entries', (t) => {
  const node = lone(2, [1, 2, 3]);
  node.raft.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries: entries(1, [1, 1]), commit: 0 });
  const rd = node.raft.ready();
  t.same(rd.entries.map((e) => e.index), [1, 2]);
  t.same(rd.hardState, { term: 1, vote: 0, commit: 0 }, 'the new term too');
  t.same(ofType(rd.messages, 'appendResponse').map((m) => [m.success, m.index]), [[true, 2]]);
  node.raft.advance();
  t.end();
});

void t.test('over a whole scripted run no response precedes its state', (t) => {
  const net = Network.create([1, 2, 3, 4, 5], { seed: 3 });
  // The driver checks every Ready as it persists it (checkAcknowledgements); run elections,
  // proposals, a crash and a transfer through it.
  net.elect(1);
  for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
  net.stabilize();
  net.crash(1);
  for (let i = 0; i < 40 && net.leaders().length === 0; i++) {
    net.tickAll();
    net.stabilize();
  }
  const leader = net.leaders()[0] ?? 0;
  t.ok(leader !== 0);
  net.restart(1);
  net.raft(leader).transferLeadership(1);
  net.tick(leader);
  net.stabilize();
  t.equal(net.raft(1).role, 'leader');
  const readies = [...net.nodes.values()].reduce((n, node) => n + node.history.length, 0);
  t.ok(readies > 20, `${readies} Readies checked`);
  t.end();
});

void t.test('Ready/advance alternate; nothing is ready while a Ready is outstanding', (t) => {
  const node = lone(1, [1, 2, 3], { config: { preVote: false } });
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.ok(node.raft.hasReady());
  node.raft.ready();
  t.notOk(node.raft.hasReady());
  t.throws(() => node.raft.ready(), /before advance/);
  node.raft.advance();
  t.throws(() => { node.raft.advance(); }, /without a Ready/);
  t.notOk(node.raft.hasReady());
  t.end();
});

void t.test('the ABA race: entries overwritten between ready() and advance() go out again', (t) => {
  const node = lone(2, [1, 2, 3], { store: storeWith([1], { term: 1, commit: 1 }) });
  node.raft.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 1, prevTerm: 1, entries: entries(2, [1, 1]), commit: 1 });
  node.begin();
  // Before the driver finished persisting entries 2..3 of term 1, leader 3 of term 2
  // overwrites them.
  node.raft.step({ type: 'append', from: 3, to: 2, term: 2, prevIndex: 1, prevTerm: 1, entries: entries(2, [2]), commit: 2 });
  const first = node.complete();
  t.same(ofType(first, 'appendResponse').map((m) => [m.to, m.index]), [[1, 3]], 'the first Ready acknowledges what it persists');
  t.equal(node.raft.appliedIndex, 1, 'index 2 is committed but not durable in its new form');
  const rest = flush(node);
  t.same(node.store.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 2]], 'the store was truncated and rewritten');
  t.same(ofType(rest, 'appendResponse').map((m) => [m.to, m.term, m.index]), [[3, 2, 2]]);
  t.same(node.applied.map((a) => [a.index, a.term]), [[1, 1], [2, 2]], 'applied only once durable');
  t.end();
});

/** Node 3 votes for 1 and then, forgetting, for 2 in the same term. */
function doubleVote(bugs: ReadonlySet<RaftBug>, crashBetween: boolean, checkContract: boolean): Network {
  const net = Network.create([1, 2, 3], { config: { preVote: false }, bugs });
  for (const node of net.nodes.values()) node.checkContract = checkContract;
  const checker = new SafetyChecker(net);
  const toThree = (m: Message) => m.to === 3;
  net.tick(1, 10);
  net.tick(2, 10);
  net.process(1);
  net.process(2);
  const requests = net.drain();
  for (const m of requests.filter((m) => m.from === 1 && toThree(m))) net.deliver(m);
  net.process(3);
  if (crashBetween) net.restart(3);
  for (const m of requests.filter((m) => m.from === 2 && toThree(m))) net.deliver(m);
  net.process(3);
  for (const m of net.drain()) net.deliver(m);
  net.stabilize();
  checker.check();
  return net;
}

void t.test('a correct node votes once per term, across a crash too', (t) => {
  const net = doubleVote(new Set(), true, true);
  t.ok(net.leaders().length <= 1);
  t.end();
});

void t.test('raft-vote-twice is caught: two leaders in one term', (t) => {
  t.throws(() => doubleVote(new Set(['raft-vote-twice']), false, true), Violation);
  try {
    doubleVote(new Set(['raft-vote-twice']), false, true);
  } catch (error) {
    t.match(String(error), /two leaders in term 1/);
  }
  t.end();
});

void t.test('raft-ack-before-persist is caught by the driver contract check', (t) => {
  const node = lone(2, [1, 2, 3], { config: { bugs: new Set(['raft-ack-before-persist']) } });
  node.raft.step({ type: 'vote', from: 1, to: 2, term: 3, lastIndex: 0, lastTerm: 0, transfer: false });
  t.ok(node.begin());
  const early = node.pending;
  t.equal(early?.hardState, null, 'the vote is not in the Ready...');
  t.same(ofType(early?.messages ?? [], 'voteResponse').map((m) => m.granted), [true], '...but its answer is');
  t.throws(() => node.complete(), Violation);
  t.throws(() => { checkAcknowledgements(emptyStore(), early?.messages ?? []); }, /before persisting/);
  t.end();
});

void t.test('raft-ack-before-persist is caught by its consequence: a forgotten vote', (t) => {
  t.throws(() => doubleVote(new Set(['raft-ack-before-persist']), true, false), /two leaders in term 1/);
  t.end();
});
