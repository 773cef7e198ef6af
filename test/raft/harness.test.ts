// The test harness and checkers have tests of their own: a checker that cannot fail proves
// nothing, and a network that delivers what it should drop hides bugs.
import t from 'tap';
import type { Ready } from '../../raft/types.js';
import { checkLogMatching, SafetyChecker } from './checker.js';
import { bytes, emptyStore, entries, makeConfig, Network, storeWith, TestNode, TestRng, Violation, zeroRng } from './harness.js';

const emptyReady = (over: Partial<Ready>): Ready => ({ hardState: null, entries: [], snapshot: null, committed: [], messages: [], readStates: [], softState: null, ...over });

void t.test('TestRng is deterministic and in range', (t) => {
  const a = new TestRng(42);
  const b = new TestRng(42);
  const draws = Array.from({ length: 100 }, () => a.int(10));
  t.same(draws, Array.from({ length: 100 }, () => b.int(10)));
  t.ok(draws.every((x) => x >= 0 && x < 10));
  t.ok(new Set(draws).size > 5, 'not constant');
  t.end();
});

void t.test('the network drops what is cut, filtered, or addressed to a dead node', (t) => {
  const net = Network.create([1, 2, 3]);
  net.elect(1);
  net.cutLink(1, 2);
  net.propose(1, 'a');
  net.stabilize();
  t.equal(net.raft(2).lastIndex, 1, 'cut link: nothing arrived');
  t.equal(net.raft(3).lastIndex, 2);
  net.heal();
  net.filter = (m) => m.to !== 3;
  net.propose(1, 'b');
  net.stabilize();
  t.equal(net.raft(3).lastIndex, 2, 'filtered');
  net.filter = null;
  net.crash(3);
  net.tick(1);
  net.stabilize();
  t.equal(net.raft(3).lastIndex, 2, 'down');
  t.end();
});

void t.test('a restart loses a Ready that was taken but not persisted', (t) => {
  const node = new TestNode(makeConfig(1, [1, 2, 3], { preVote: false }), emptyStore(), zeroRng);
  for (let i = 0; i < 10; i++) node.raft.tick();
  t.ok(node.begin());
  t.equal(node.store.hardState.term, 0, 'not persisted yet');
  node.restart();
  t.equal(node.raft.term, 0, 'the term bump is gone');
  t.equal(node.pending, null);
  t.end();
});

void t.test('the driver persists snapshots and truncating appends like a disk would', (t) => {
  const node = new TestNode(makeConfig(2, [1, 2, 3]), storeWith([1, 1, 1], { term: 1, commit: 1 }), zeroRng);
  node.raft.step({ type: 'append', from: 1, to: 2, term: 2, prevIndex: 1, prevTerm: 1, entries: entries(2, [2]), commit: 1 });
  node.begin();
  node.complete();
  t.same(node.store.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 2]]);
  t.equal(node.storedLastIndex(), 2);
  t.equal(node.storedEntry(3), undefined);
  t.end();
});

void t.test('the safety checker catches two leaders, divergent applies and lost commits', (t) => {
  const net = Network.create([1, 2, 3]);
  const checker = new SafetyChecker(net);
  const n1 = net.node(1);
  const n2 = net.node(2);
  checker.onReady(n1, emptyReady({ messages: [{ type: 'heartbeat', from: 1, to: 2, term: 4, commit: 0, context: 0 }] }));
  t.throws(() => {
    checker.onReady(n2, emptyReady({ messages: [{ type: 'append', from: 2, to: 1, term: 4, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 }] }));
  }, Violation);
  checker.onReady(n1, emptyReady({ committed: entries(1, [1]) }));
  t.throws(() => {
    checker.onReady(n2, emptyReady({ committed: [{ index: 1, term: 1, type: 'normal', data: bytes('other') }] }));
  }, /applied/);
  n2.store = storeWith([2], { term: 2, commit: 1 });
  t.throws(() => {
    checker.check();
  }, /differs from the committed/);
  n2.store = storeWith([1], { term: 2, commit: 3 });
  t.throws(() => {
    checker.check();
  }, /beyond its stored log/);
  t.end();
});

void t.test('log matching is checked on stored logs', (t) => {
  const a = new TestNode(makeConfig(1, [1, 2]), storeWith([1, 1, 2]), zeroRng);
  const b = new TestNode(makeConfig(2, [1, 2]), storeWith([1, 1, 3]), zeroRng);
  t.doesNotThrow(() => {
    checkLogMatching(a, b);
  }, 'diverging after a common prefix is fine');
  b.store.entries[0] = { index: 1, term: 1, type: 'normal', data: bytes('forged') };
  b.store.entries[2] = { index: 3, term: 2, type: 'normal', data: bytes('e3t2') };
  t.throws(() => {
    checkLogMatching(a, b);
  }, /log matching/);
  t.end();
});
