// Snapshots: compaction, chunked sending to a follower that needs compacted entries,
// assembly with out-of-order rejection and retransmission, install (discarding a conflicting
// log), the "not needed" shortcuts, and restarts from a snapshot.
import t from 'tap';

/** The one assertion the fixture needs, from whichever test calls it. */
interface Tap {
  ok(value: unknown, message: string): unknown;
}
import { Raft } from '../../raft/raft.js';
import type { Message, SnapshotMeta } from '../../raft/types.js';
import { bytes, decodeState, emptyStore, flush, lone, makeConfig, Network, ofType, storeWith, TestNode, zeroRng } from './harness.js';

/** A 3-node cluster where node 3 missed entries 2..11 that the others compacted away. */
function laggingFollower(t: Tap, chunkBytes: number): Network {
  const net = Network.create([1, 2, 3], { config: { snapshotChunkBytes: chunkBytes } });
  net.elect(1);
  net.crash(3);
  for (let i = 0; i < 10; i++) net.propose(1, `entry-${i}-${'x'.repeat(20)}`);
  net.stabilize();
  net.tickAll();
  net.stabilize();
  t.ok(net.node(1).compact(), 'leader compacts');
  t.ok(net.node(2).compact(), 'follower compacts');
  net.restart(3);
  return net;
}

void t.test('a follower that needs compacted entries gets the snapshot in chunks', (t) => {
  const net = laggingFollower(t, 64);
  const leaderSnapshot = net.node(1).store.snapshotData;
  const chunks: Array<Extract<Message, { type: 'snapshot' }>> = [];
  net.filter = (m) => {
    if (m.type === 'snapshot') chunks.push(m);
    return true;
  };
  net.tick(1);
  net.stabilize();
  t.ok(leaderSnapshot !== undefined);
  const size = leaderSnapshot?.byteLength ?? 0;
  t.equal(chunks.length, Math.ceil(size / 64), `${size} bytes in chunks of 64`);
  t.same(chunks.map((m) => m.offset), chunks.map((_, i) => i * 64), 'in order');
  t.same(chunks.map((m) => m.done), chunks.map((_, i) => i === chunks.length - 1));
  t.ok(chunks.every((m) => m.chunk.byteLength <= 64));
  const installed = net.node(3).history.find((rd) => rd.snapshot !== null)?.snapshot;
  t.equal(installed?.meta.index, 11, 'installed at the compaction point');
  t.same(installed?.data, leaderSnapshot, 'byte for byte');
  t.equal(net.node(3).store.snapshot?.index, 11);
  t.same(net.node(3).applied, net.node(1).applied, 'the same state');
  net.propose(1, 'after');
  net.stabilize();
  t.equal(net.raft(3).commitIndex, 12, 'and replication resumes after it');
  t.same(net.node(3).applied.at(-1)?.data, 'after');
  t.equal(net.raft(1).status().progress?.[3]?.state, 'replicate');
  t.end();
});

void t.test('a lost chunk is sent again after a heartbeat round with no progress', (t) => {
  const net = laggingFollower(t, 32);
  let dropped = 0;
  net.filter = (m) => {
    if (m.type === 'snapshot' && m.offset === 64 && dropped === 0) {
      dropped++;
      return false;
    }
    return true;
  };
  net.tick(1);
  net.stabilize();
  t.equal(dropped, 1);
  t.equal(net.raft(3).commitIndex, 1, 'stuck at the lost chunk');
  t.equal(net.raft(1).status().progress?.[3]?.state, 'snapshot');
  for (let i = 0; i < 3; i++) {
    net.tick(1);
    net.stabilize();
  }
  t.equal(net.raft(3).commitIndex, 11, 'resumed and installed');
  t.same(net.node(3).applied, net.node(1).applied);
  t.end();
});

void t.test('the follower rejects chunks out of order and says where to resume', (t) => {
  const node = lone(2, [1, 2, 3]);
  const meta: SnapshotMeta = { index: 5, term: 1, voters: [1, 2, 3], observers: [] };
  const chunk = (offset: number, data: string, done = false) => {
    node.raft.step({ type: 'snapshot', from: 1, to: 2, term: 1, meta, offset, chunk: bytes(data), done });
    return ofType(flush(node), 'snapshotResponse').map((m) => [m.offset, m.done, m.rejected]);
  };
  // The snapshot's data is '["abcdef"]', sent as '["ab', 'cdef', '"]'.
  t.same(chunk(4, 'cdef'), [[0, false, true]], 'no transfer under way: start from 0');
  t.same(chunk(0, '["ab'), [[4, false, false]]);
  t.same(chunk(8, '"]'), [[4, false, true]], 'a gap: resume at 4');
  t.same(chunk(0, '["ab'), [[4, false, false]], 'offset 0 starts over');
  t.same(chunk(4, 'cdef'), [[8, false, false]]);
  t.same(chunk(8, '"]', true), [[10, true, false]]);
  const installed = node.history.find((rd) => rd.snapshot !== null)?.snapshot;
  t.equal(new TextDecoder().decode(installed?.data), '["abcdef"]');
  t.equal(node.raft.commitIndex, 5);
  t.equal(node.raft.appliedIndex, 5);
  t.end();
});

void t.test('installing a snapshot discards a conflicting log', (t) => {
  const node = lone(2, [1, 2, 3], { store: storeWith([1, 2, 2, 2], { term: 2, commit: 1 }) });
  const meta: SnapshotMeta = { index: 5, term: 3, voters: [1, 2, 3], observers: [] };
  node.raft.step({ type: 'snapshot', from: 1, to: 2, term: 3, meta, offset: 0, chunk: bytes('[]'), done: true });
  const rd = node.raft.ready();
  t.equal(rd.snapshot?.meta.index, 5);
  t.same(rd.entries, [], 'nothing of the old log survives');
  t.equal(rd.hardState?.commit, 5);
  t.same(ofType(rd.messages, 'appendResponse').map((m) => [m.success, m.index]), [[true, 5]], 'acknowledged with the snapshot it depends on');
  node.raft.advance();
  t.equal(node.raft.lastIndex, 5);
  t.equal(node.raft.status().lastTerm, 3);
  t.end();
});

void t.test('a snapshot that is not needed is answered at once, without a transfer', (t) => {
  const meta: SnapshotMeta = { index: 3, term: 1, voters: [1, 2, 3], observers: [] };
  // Our commit index is already past it.
  const ahead = lone(2, [1, 2, 3], { store: storeWith([1, 1, 1, 1], { term: 1, commit: 4 }) });
  ahead.raft.step({ type: 'snapshot', from: 1, to: 2, term: 1, meta, offset: 0, chunk: bytes('ab'), done: false });
  const rd = ahead.raft.ready();
  t.equal(rd.snapshot, null);
  t.same(ofType(rd.messages, 'snapshotResponse').map((m) => [m.done, m.rejected]), [[true, false]]);
  t.same(ofType(rd.messages, 'appendResponse').map((m) => m.index), [4]);
  ahead.raft.advance();
  // Our log holds its last entry: commit up to it and keep the log.
  const holds = lone(2, [1, 2, 3], { store: storeWith([1, 1, 1, 1, 1], { term: 1, commit: 1 }) });
  holds.raft.step({ type: 'snapshot', from: 1, to: 2, term: 1, meta, offset: 0, chunk: bytes('ab'), done: false });
  t.equal(holds.raft.commitIndex, 3);
  t.equal(holds.raft.lastIndex, 5, 'the log is kept');
  t.equal(flush(holds).length, 2);
  t.equal(holds.history.some((r) => r.snapshot !== null), false);
  // Older than our own compaction point.
  const compacted = lone(2, [1, 2, 3], { store: { hardState: { term: 1, vote: 0, commit: 4 }, snapshot: { index: 4, term: 1, voters: [1, 2, 3], observers: [] }, snapshotData: bytes('[]'), entries: [] } });
  compacted.raft.step({ type: 'snapshot', from: 1, to: 2, term: 1, meta, offset: 0, chunk: bytes('ab'), done: false });
  t.same(ofType(flush(compacted), 'snapshotResponse').map((m) => m.done), [true]);
  t.equal(compacted.store.snapshot?.index, 4, 'kept its newer snapshot');
  t.end();
});

void t.test('a restarted node comes back from its snapshot and log', (t) => {
  const net = laggingFollower(t, 1024);
  net.tick(1);
  net.stabilize();
  net.propose(1, 'tail');
  net.stabilize();
  const before = net.node(3).applied;
  net.restart(3);
  t.equal(net.raft(3).appliedIndex, 11, 'applying restarts at the snapshot');
  t.same(decodeState(net.node(3).store.snapshotData ?? bytes('[]')).length, 11);
  net.tick(1);
  net.stabilize();
  t.same(net.node(3).applied, before, 're-applies the committed tail after the snapshot');
  t.end();
});

void t.test("a restarted leader sends its snapshot if the driver handed the data back", (t) => {
  const net = laggingFollower(t, 1024);
  // Everyone restarts; node 1 leads again and must catch node 3 up from its snapshot.
  for (const id of [1, 2, 3]) net.restart(id);
  net.elect(1);
  t.equal(net.raft(1).role, 'leader');
  net.tick(1);
  net.stabilize();
  t.equal(net.raft(3).commitIndex, net.raft(1).commitIndex);
  t.same(net.node(3).applied, net.node(1).applied);
  t.end();
});

void t.test('without the snapshot data a leader waits for compact() to hand it back', (t) => {
  const net = laggingFollower(t, 1024);
  const leader = net.node(1);
  const data = leader.store.snapshotData;
  leader.store.snapshotData = undefined;
  leader.restart();
  net.restart(2);
  net.elect(1);
  net.tick(1);
  net.stabilize();
  t.ok(net.raft(3).commitIndex < 11, 'node 3 cannot be caught up yet');
  leader.store.snapshotData = data;
  net.raft(1).compact(11, data ?? new Uint8Array(0));
  net.tick(1);
  net.stabilize();
  t.equal(net.raft(3).commitIndex, net.raft(1).commitIndex, 'compact() at the same index restored it');
  t.end();
});

void t.test('compact: only applied entries; an older snapshot is ignored', (t) => {
  const node = lone(1, [1]);
  node.raft.tick();
  for (let i = 0; i < 10; i++) node.raft.tick();
  node.raft.propose(bytes('a'));
  flush(node);
  t.equal(node.raft.appliedIndex, 2);
  t.throws(() => { node.raft.compact(3, bytes('x')); }, /beyond the applied index/);
  node.raft.compact(2, bytes('s2'));
  t.equal(node.raft.status().lastIndex, 2);
  node.raft.compact(1, bytes('s1'));
  t.equal(node.raft.lastIndex, 2, 'older: ignored');
  t.end();
});

void t.test('the restart state must be consistent', (t) => {
  const config = makeConfig(1, [1, 2, 3]);
  t.throws(() => new Raft(config, { hardState: { term: 1, vote: 0, commit: 2 }, snapshot: null, entries: [] }, zeroRng), /beyond the last index/);
  t.throws(() => new Raft(config, { hardState: { term: 1, vote: 7, commit: 0 }, snapshot: null, entries: [] }, zeroRng), /not a voter/);
  t.throws(() => new Raft(makeConfig(4, [1, 2, 3]), { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [] }, zeroRng), /neither a voter/);
  t.throws(() => new Raft(makeConfig(1, [1, 2], { observers: [2] }), { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [] }, zeroRng), /distinct/);
  t.throws(() => new Raft(makeConfig(1, [1], { heartbeatTicks: 10 }), { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [] }, zeroRng), /heartbeatTicks/);
  t.ok(new TestNode(config, emptyStore(), zeroRng));
  t.end();
});
