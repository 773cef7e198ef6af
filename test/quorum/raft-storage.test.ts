import t from 'tap';
import { openMemoryKV, createMemoryLevel } from '../../sim/kv.js';
import { RaftStorage } from '../../src/quorum/raft-storage.js';

const entry = (index: number, term: number, text = `e${index}`) => ({ index, term, type: 'normal' as const, data: new Uint8Array(Buffer.from(text)) });

void t.test('hard state, entries, overwrites and snapshots round-trip through the KV', async (t) => {
  const db = createMemoryLevel();
  const storage = new RaftStorage(await openMemoryKV(db));
  t.same(await storage.load(), { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [] });
  await storage.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: [entry(1, 1), entry(2, 1), entry(3, 2)], snapshot: null });
  await storage.save({ hardState: { term: 3, vote: 2, commit: 1 }, entries: [entry(2, 3, 'replaced')], snapshot: null });
  const reloaded = new RaftStorage(await openMemoryKV(db));
  const state = await reloaded.load();
  t.same(state.hardState, { term: 3, vote: 2, commit: 1 });
  t.same(state.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]), [[1, 1, 'e1'], [2, 3, 'replaced']], 'an overwrite drops the stale suffix');
  await reloaded.save({ hardState: null, entries: [entry(3, 3), entry(4, 3)], snapshot: null });
  await reloaded.saveOwnSnapshot({ meta: { index: 2, term: 3, voters: [1, 2, 3], observers: [] }, data: new Uint8Array([7]) });
  const compacted = await new RaftStorage(await openMemoryKV(db)).load();
  t.same(compacted.snapshot?.meta.index, 2);
  t.same(compacted.entries.map((e) => e.index), [3, 4], 'entries the snapshot covers are gone');
  const installer = new RaftStorage(await openMemoryKV(db));
  await installer.load();
  await installer.save({ hardState: { term: 4, vote: 0, commit: 10 }, entries: [], snapshot: { meta: { index: 10, term: 4, voters: [1, 2, 3], observers: [] }, data: new Uint8Array([8]) } });
  const installed = await new RaftStorage(await openMemoryKV(db)).load();
  t.same(installed.snapshot?.meta.index, 10);
  t.same(installed.entries, [], 'a received snapshot replaces the log');
});
