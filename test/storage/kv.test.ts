import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createMemoryLevel, openMemoryKV } from '../../sim/kv.js';
import type { KV, KVRange } from '../../storage/kv.js';
import { openLevelKV } from '../../storage/node-kv.js';

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);
const str = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'driftwood-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function collect(kv: KV, range: KVRange): Promise<string[]> {
  const entries: string[] = [];
  for await (const [key, value] of kv.iterate(range)) entries.push(`${key}=${str(value) ?? ''}`);
  return entries;
}

const stores: Array<{ name: string; open: (t: Test) => Promise<KV> }> = [
  { name: 'memory-level', open: () => openMemoryKV() },
  { name: 'level', open: async (t) => openLevelKV(join(await tempDir(t), 'kv')) },
];

for (const store of stores) {
  void t.test(`${store.name}: get, put and del through batches`, async (t) => {
    const kv = await store.open(t);
    t.equal(await kv.get('missing'), undefined);
    await kv.batch([{ type: 'put', key: 'term', value: bytes('3') }, { type: 'put', key: 'vote', value: bytes('2') }], { sync: true });
    t.equal(str(await kv.get('term')), '3');
    const value = await kv.get('vote');
    t.ok(value instanceof Uint8Array);
    t.equal(str(value), '2');
    await kv.batch([{ type: 'del', key: 'vote' }, { type: 'put', key: 'term', value: bytes('4') }], { sync: false });
    t.equal(await kv.get('vote'), undefined);
    t.equal(str(await kv.get('term')), '4');
    await kv.batch([], { sync: true });
    await kv.batch([{ type: 'del', key: 'never-there' }], { sync: true });
    await kv.close();
  });

  void t.test(`${store.name}: a batch applies all its ops or none`, async (t) => {
    const kv = await store.open(t);
    await kv.batch([{ type: 'put', key: 'a', value: bytes('old') }], { sync: true });
    const invalid = undefined as unknown as Uint8Array;
    await t.rejects(kv.batch([{ type: 'put', key: 'a', value: bytes('new') }, { type: 'put', key: 'b', value: invalid }], { sync: true }));
    t.equal(str(await kv.get('a')), 'old');
    t.equal(await kv.get('b'), undefined);
    await kv.close();
  });

  void t.test(`${store.name}: iterate honours gte, lt, reverse and limit`, async (t) => {
    const kv = await store.open(t);
    const keys = ['entry/0001', 'entry/0002', 'entry/0003', 'entry/0010', 'hard-state'];
    await kv.batch(keys.map((key) => ({ type: 'put' as const, key, value: bytes(key.slice(-1)) })), { sync: true });
    t.same(await collect(kv, {}), ['entry/0001=1', 'entry/0002=2', 'entry/0003=3', 'entry/0010=0', 'hard-state=e']);
    t.same(await collect(kv, { gte: 'entry/0002', lt: 'entry/0010' }), ['entry/0002=2', 'entry/0003=3']);
    t.same(await collect(kv, { gte: 'entry/', lt: 'entry0', reverse: true }), ['entry/0010=0', 'entry/0003=3', 'entry/0002=2', 'entry/0001=1']);
    t.same(await collect(kv, { gte: 'entry/', lt: 'entry0', limit: 2 }), ['entry/0001=1', 'entry/0002=2']);
    t.same(await collect(kv, { lt: 'entry0', reverse: true, limit: 1 }), ['entry/0010=0'], 'the last entry, as Raft finds its last index');
    t.same(await collect(kv, { gte: 'hard-state' }), ['hard-state=e']);
    t.same(await collect(kv, { gte: 'x' }), []);
    t.same(await collect(kv, { limit: 0 }), []);
    await kv.close();
  });

  void t.test(`${store.name}: leaving an iteration early closes its iterator`, async (t) => {
    const kv = await store.open(t);
    await kv.batch(['a', 'b', 'c'].map((key) => ({ type: 'put' as const, key, value: bytes(key) })), { sync: true });
    let seen = 0;
    for await (const [key] of kv.iterate({})) {
      seen += 1;
      if (key === 'b') break;
    }
    t.equal(seen, 2);
    await kv.close();
  });
}

void t.test('level: data survives close and reopen', async (t) => {
  const dir = join(await tempDir(t), 'kv');
  const first = await openLevelKV(dir);
  await first.batch([{ type: 'put', key: 'term', value: bytes('7') }], { sync: true });
  await first.batch([{ type: 'put', key: 'commit', value: bytes('12') }], { sync: false });
  await first.close();
  const second = await openLevelKV(dir);
  t.equal(str(await second.get('term')), '7');
  t.equal(str(await second.get('commit')), '12');
  t.same(await collect(second, {}), ['commit=12', 'term=7']);
  await second.close();
});

void t.test('memory-level: the same database reopens with its data (a simulated restart)', async (t) => {
  const db = createMemoryLevel();
  const first = await openMemoryKV(db);
  await first.batch([{ type: 'put', key: 'term', value: bytes('7') }], { sync: true });
  await first.close();
  const second = await openMemoryKV(db);
  t.equal(str(await second.get('term')), '7');
  await second.close();
});

void t.test('memory-level: values are copied in and out, as LevelDB does', async (t) => {
  const kv = await openMemoryKV();
  const value = bytes('abc');
  await kv.batch([{ type: 'put', key: 'k', value }], { sync: true });
  value[0] = 0x7a;
  const read = await kv.get('k');
  t.equal(str(read), 'abc');
  read![1] = 0x7a;
  t.equal(str(await kv.get('k')), 'abc');
  for await (const [, entry] of kv.iterate({})) entry[2] = 0x7a;
  t.equal(str(await kv.get('k')), 'abc');
  await kv.close();
});
