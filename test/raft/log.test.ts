// Unit tests of the core's building blocks: the in-memory log (conflicts, truncation,
// compaction, restore, the hand-out/persist markers and their ABA race), per-follower
// progress and its inflight window, and the quorum arithmetic.
import t from 'tap';
import { RaftLog } from '../../raft/log.js';
import { Inflights, Progress } from '../../raft/progress.js';
import { quorumIndex, quorumSize, voteResult } from '../../raft/quorum.js';
import { ReadOnly } from '../../raft/read-only.js';
import { SnapshotAssembly, snapshotChunk } from '../../raft/snapshot-transfer.js';
import { bytes, entries } from './harness.js';

const meta = (index: number, term: number) => ({ index, term, voters: [1, 2, 3], observers: [] });

void t.test('log: terms, last index and the compaction point', (t) => {
  const log = new RaftLog(meta(3, 2), entries(4, [2, 3, 3]), 4);
  t.equal(log.firstIndex(), 4);
  t.equal(log.lastIndex(), 6);
  t.equal(log.lastTerm(), 3);
  t.equal(log.term(3), 2, 'the snapshot term');
  t.equal(log.term(2), undefined, 'compacted');
  t.equal(log.term(7), undefined, 'beyond the log');
  t.equal(log.committed, 4);
  t.equal(log.applied, 3, 'applying restarts at the snapshot');
  t.ok(log.isUpToDate(6, 3));
  t.ok(log.isUpToDate(2, 4), 'a higher last term wins whatever the length');
  t.notOk(log.isUpToDate(5, 3));
  t.notOk(log.isUpToDate(9, 2));
  t.end();
});

void t.test('log: a loaded state must be consistent', (t) => {
  t.throws(() => new RaftLog(null, entries(1, [1, 1]), 3), /beyond the last index/);
  t.throws(() => new RaftLog(null, entries(2, [1]), 0), /does not follow/);
  t.throws(() => new RaftLog(null, entries(1, [2, 1]), 0), /below the previous/);
  t.throws(() => new RaftLog(meta(5, 1), [], 3), /below the snapshot/);
  t.end();
});

void t.test('log: findConflict and maybeAppend truncate at the first conflict only', (t) => {
  const log = new RaftLog(null, entries(1, [1, 1, 2, 2]), 1);
  t.equal(log.findConflict(entries(2, [1, 2])), 0, 'all present');
  t.equal(log.findConflict(entries(3, [2, 2, 3])), 5, 'new entries');
  t.equal(log.findConflict(entries(3, [3])), 3, 'conflict');
  t.equal(log.maybeAppend(1, 2, entries(2, [2])), null, 'prev term mismatch');
  t.equal(log.maybeAppend(5, 2, []), null, 'prev beyond the log');
  t.equal(log.maybeAppend(1, 1, entries(2, [1])), 2, 'a stale subset answers its own last index');
  t.equal(log.lastIndex(), 4, '...and truncates nothing');
  t.equal(log.maybeAppend(2, 1, entries(3, [3])), 3);
  t.equal(log.lastIndex(), 3, 'truncated at the conflict');
  t.equal(log.term(3), 3);
  t.end();
});

void t.test('log: committed entries are never overwritten', (t) => {
  const log = new RaftLog(null, entries(1, [1, 1, 2]), 2);
  t.throws(() => log.append(entries(2, [3])), /overwrite committed/);
  t.throws(() => log.maybeAppend(1, 1, entries(2, [3])), /conflicts with a committed/);
  t.throws(() => log.append(entries(5, [3])), /gap/);
  t.throws(() => log.commitTo(4), /beyond the last index/);
  t.notOk(log.commitTo(1), 'commit never regresses');
  t.equal(log.committed, 2);
  t.end();
});

void t.test('log: findConflictByTerm skips every index whose term is too high', (t) => {
  // idx 1 2 3 4 5 6 7 8 9
  // term 1 3 3 4 4 5 5 5 6
  const log = new RaftLog(null, entries(1, [1, 3, 3, 4, 4, 5, 5, 5, 6]), 0);
  t.same(log.findConflictByTerm(8, 3), { index: 3, term: 3 });
  t.same(log.findConflictByTerm(9, 6), { index: 9, term: 6 });
  t.same(log.findConflictByTerm(20, 5), { index: 8, term: 5 }, 'clamped to the last index');
  t.same(log.findConflictByTerm(9, 0), { index: 0, term: 0 });
  const compacted = new RaftLog(meta(4, 4), entries(5, [4, 5, 5]), 4);
  t.same(compacted.findConflictByTerm(7, 3), { index: 3, term: 0 }, 'unknown below the compaction point');
  t.end();
});

void t.test('log: slice honours the count and byte limits but always moves one entry', (t) => {
  const log = new RaftLog(null, entries(1, [1, 1, 1, 1, 1]), 0);
  t.equal(log.slice(1, 6, 2, 1 << 20)?.length, 2);
  t.equal(log.slice(1, 6, 10, 1)?.length, 1, 'one entry even when over the byte limit');
  t.equal(log.slice(6, 6, 10, 100)?.length, 0);
  log.commitTo(3);
  log.handOut();
  log.markPersisted({ index: 5, epoch: 0 });
  log.applyingTo(3);
  log.appliedTo(3);
  log.compact(2);
  t.equal(log.slice(2, 6, 10, 1 << 20), null, 'compacted');
  t.equal(log.slice(3, 6, 10, 1 << 20)?.length, 3);
  t.end();
});

void t.test('log: hand-out, persistence and applying', (t) => {
  const log = new RaftLog(null, [], 0);
  log.append(entries(1, [1, 1, 1]));
  t.ok(log.hasUnhanded());
  t.same(log.unhandedEntries().map((e) => e.index), [1, 2, 3]);
  const mark = log.handOut();
  t.notOk(log.hasUnhanded());
  log.commitTo(3);
  t.same(log.nextCommitted(10), [], 'committed but not durable: not applied yet');
  log.markPersisted(mark);
  t.equal(log.persisted, 3);
  t.same(log.nextCommitted(2).map((e) => e.index), [1, 2], 'bounded');
  log.applyingTo(2);
  t.same(log.nextCommitted(10).map((e) => e.index), [3]);
  t.throws(() => { log.appliedTo(3); }, /beyond what was handed out/);
  log.appliedTo(2);
  t.throws(() => { log.appliedTo(1); }, /regressed/);
  t.end();
});

void t.test('log: the ABA race between ready() and advance()', (t) => {
  // Entries 2..3 of term 1 are handed out; before advance() a new leader overwrites 2..3
  // with term 2. The driver persisted the OLD entries: only index 1 is durable, and the new
  // entries must go out again in the next Ready.
  const log = new RaftLog(null, entries(1, [1]), 1);
  log.append(entries(2, [1, 1]));
  const mark = log.handOut();
  t.equal(log.maybeAppend(1, 1, entries(2, [2, 2])), 3);
  log.markPersisted(mark);
  t.equal(log.persisted, 1, 'only the untouched prefix is durable');
  t.same(log.unhandedEntries().map((e) => [e.index, e.term]), [[2, 2], [3, 2]], 'the new entries go out again');
  t.end();
});

void t.test('log: restore discards the log; an older hand-out is void', (t) => {
  const log = new RaftLog(null, entries(1, [1, 1, 2]), 1);
  log.append(entries(4, [2]));
  const mark = log.handOut();
  log.restore({ meta: meta(10, 3), data: bytes('state') });
  t.equal(log.lastIndex(), 10);
  t.equal(log.committed, 10);
  t.equal(log.term(10), 3);
  log.markPersisted(mark);
  t.equal(log.persisted, 0, 'the old hand-out does not make the new log durable');
  t.ok(log.hasUnhanded());
  t.equal(log.unhandedSnapshot()?.meta.index, 10);
  const mark2 = log.handOut();
  t.equal(log.applyingTarget, 10, 'the driver installs the snapshot with this Ready');
  log.markPersisted(mark2);
  t.equal(log.persisted, 10);
  t.throws(() => { log.restore({ meta: meta(9, 3), data: bytes('old') }); }, /not newer/);
  t.end();
});

void t.test('log: compaction only up to the applied index', (t) => {
  const log = new RaftLog(null, entries(1, [1, 1, 2, 2]), 3);
  log.applyingTo(3);
  log.appliedTo(2);
  t.throws(() => { log.compact(3); }, /beyond the applied/);
  log.compact(2);
  t.equal(log.firstIndex(), 3);
  t.equal(log.term(2), 1);
  t.throws(() => { log.compact(1); }, /below the last snapshot/);
  t.end();
});

void t.test('inflights: a bounded ring of increasing indexes', (t) => {
  const inflights = new Inflights(3);
  inflights.add(2);
  inflights.add(4);
  inflights.add(6);
  t.ok(inflights.full());
  t.throws(() => { inflights.add(8); }, /full/);
  inflights.freeLE(4);
  t.equal(inflights.size, 1);
  inflights.add(8);
  inflights.add(10);
  t.throws(() => { inflights.add(9); }, /full/);
  inflights.freeFirst();
  t.throws(() => { inflights.add(9); }, /does not follow/);
  inflights.freeLE(100);
  t.equal(inflights.size, 0);
  t.throws(() => new Inflights(0));
  t.end();
});

void t.test('progress: probe, replicate and snapshot states', (t) => {
  const pr = new Progress(11, 2, true);
  t.equal(pr.state, 'probe');
  t.notOk(pr.isPaused());
  pr.sentEntries(0, 10);
  t.ok(pr.isPaused(), 'probe: one append at a time');
  t.notOk(pr.maybeDecrTo(5, 3), 'a rejection of another prevIndex is stale');
  t.ok(pr.maybeDecrTo(10, 3));
  t.equal(pr.next, 4, 'next = hint + 1');
  t.notOk(pr.isPaused());
  t.ok(pr.maybeUpdate(3));
  t.notOk(pr.maybeUpdate(2), 'a late, older acknowledgement');
  t.equal(pr.match, 3, 'match never regresses');
  pr.becomeReplicate();
  t.equal(pr.next, 4);
  pr.sentEntries(2, 5);
  pr.sentEntries(2, 7);
  t.ok(pr.isPaused(), 'window of two full');
  t.equal(pr.next, 8);
  t.notOk(pr.maybeDecrTo(3, 0), 'a rejection at or below match is stale');
  t.ok(pr.maybeDecrTo(6, 0));
  t.equal(pr.next, 4, 'replicate falls back to match + 1');
  pr.becomeSnapshot({ meta: meta(20, 2), data: bytes('x') });
  t.ok(pr.isPaused());
  pr.becomeProbe();
  t.equal(pr.next, 21, 'after a snapshot, probe after it');
  t.equal(pr.transfer, null);
  t.end();
});

void t.test('quorum arithmetic', (t) => {
  t.equal(quorumSize(1), 1);
  t.equal(quorumSize(3), 2);
  t.equal(quorumSize(4), 3);
  t.equal(quorumSize(5), 3);
  t.equal(quorumIndex([5, 1, 3]), 3);
  t.equal(quorumIndex([5, 1, 3, 4, 2]), 3);
  t.equal(quorumIndex([7]), 7);
  const votes = new Map<number, boolean>([[1, true]]);
  t.equal(voteResult([1, 2, 3], votes), 'pending');
  votes.set(2, false);
  t.equal(voteResult([1, 2, 3], votes), 'pending');
  votes.set(3, true);
  t.equal(voteResult([1, 2, 3], votes), 'won');
  t.equal(voteResult([1, 2, 3], new Map([[2, false], [3, false]])), 'lost');
  t.end();
});

void t.test('read-only queue: confirming a read confirms the ones before it', (t) => {
  const ro = new ReadOnly();
  ro.add(1, 5, 1);
  ro.add(2, 6, 1);
  ro.add(3, 6, 1);
  t.throws(() => { ro.add(2, 7, 1); }, /already pending/);
  t.equal(ro.recvAck(2, 2), 2);
  t.equal(ro.recvAck(2, 99), 0, 'unknown request');
  t.same(ro.release(2), [{ requestId: 1, index: 5 }, { requestId: 2, index: 6 }]);
  t.equal(ro.size, 1);
  ro.defer(7);
  t.ok(ro.has(7));
  t.same(ro.takeDeferred(), [7]);
  ro.reset();
  t.equal(ro.size, 0);
  t.end();
});

void t.test('snapshot chunks and their assembly', (t) => {
  const snapshot = { meta: meta(9, 2), data: bytes('abcdefghij') };
  const first = snapshotChunk(snapshot, 0, 4);
  t.same([first.end, first.done], [4, false]);
  const last = snapshotChunk(snapshot, 8, 4);
  t.same([last.end, last.done], [10, true]);
  t.throws(() => snapshotChunk(snapshot, 11, 4));
  const assembly = new SnapshotAssembly(snapshot.meta);
  t.ok(assembly.accepts(snapshot.meta, 0));
  assembly.add(first.chunk);
  t.notOk(assembly.accepts(snapshot.meta, 8), 'out of order');
  t.notOk(assembly.accepts(meta(9, 3), 4), 'another snapshot');
  assembly.add(snapshotChunk(snapshot, 4, 4).chunk);
  assembly.add(last.chunk);
  t.equal(new TextDecoder().decode(assembly.snapshot().data), 'abcdefghij');
  t.end();
});
