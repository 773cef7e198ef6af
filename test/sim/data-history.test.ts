// The data checker names each anomaly of a client history against the final logs, and counts
// what is allowed (lost acks=1 writes, duplicates of retried batches) without calling it a violation.
import t from 'tap';
import { DataHistory, type DataAnomaly, type StoredRecord } from '../../sim/data-history.js';

function history(): { history: DataHistory; seen: Array<[DataAnomaly, string]> } {
  const seen: Array<[DataAnomaly, string]> = [];
  return { history: new DataHistory((kind, text) => { seen.push([kind, text]); }), seen };
}

const log = (...values: string[]): StoredRecord[] => values.map((value, offset) => ({ partition: 0, offset, value }));

void t.test('a clean history: nothing reported, everything counted', (t) => {
  const { history: h, seen } = history();
  h.sent('b1', 0, ['a', 'b'], -1);
  h.acknowledged('b1', ['a', 'b'], 0);
  h.sent('b2', 0, ['c'], 1);
  h.acknowledged('b2', ['c'], 2);
  h.read(0, 0, 'a');
  h.highWatermark('c0', 0, 2, 'n1');
  h.highWatermark('c0', 0, 3, 'n1');
  const counts = h.check(log('a', 'b', 'c'), 20);
  t.same(seen, []);
  t.same(counts, { acknowledgedAll: 2, acknowledgedOne: 1, lost: 0, lostUnguaranteed: 0, duplicates: 0, idempotentRetried: 0, consumed: 1 });
  t.end();
});

void t.test('each anomaly by its name', (t) => {
  const { history: h, seen } = history();
  h.sent('b1', 0, ['a'], -1);
  h.acknowledged('b1', ['a'], 0);
  h.sent('b2', 0, ['lost'], -1);
  h.acknowledged('b2', ['lost'], 1);
  h.sent('b3', 0, ['one'], 1);
  h.acknowledged('b3', ['one'], 2);
  h.sent('b4', 0, ['twice'], -1); // sent once, stored twice
  h.sent('b5', 0, ['late'], -1); // sent after b1 (offset 0) was acknowledged
  h.acknowledged('b5', ['late'], 0);
  h.read(0, 0, 'a');
  h.read(0, 0, 'z');
  h.highWatermark('c0', 0, 5, 'n1');
  h.highWatermark('c0', 0, 4, 'n2');
  const counts = h.check([{ partition: 0, offset: 0, value: 'late' }, ...log('a', 'twice', 'twice').map((r) => ({ ...r, offset: r.offset + 1 }))], 20);
  const kinds = seen.map(([kind]) => kind).sort();
  t.same(kinds, ['duplicate', 'inconsistent-offsets', 'inconsistent-offsets', 'inconsistent-offsets', 'inversion', 'lost-write', 'nonmonotonic-hw'], JSON.stringify(seen, null, 1));
  t.equal(counts.lost, 1);
  t.equal(counts.lostUnguaranteed, 1, 'the acks=1 record may be lost');
  t.end();
});

void t.test('a retried idempotent batch stored twice is a duplicate violation; stored once it is only counted', (t) => {
  const { history: h, seen } = history();
  h.sent('i1', 0, ['a', 'b'], -1, true);
  h.sent('i1', 0, ['a', 'b'], -1, true);
  h.acknowledged('i1', ['a', 'b'], 0);
  h.sent('i2', 0, ['c'], -1, true);
  h.sent('i2', 0, ['c'], -1, true);
  h.sent('i2', 0, ['c'], -1, true);
  h.acknowledged('i2', ['c'], 2);
  const once = h.check(log('a', 'b', 'c'), 20);
  t.same(seen, [], 'each retried batch is stored once');
  t.equal(once.idempotentRetried, 2);
  t.equal(once.duplicates, 0);
  const twice = h.check(log('a', 'b', 'c', 'c'), 20);
  t.same(seen.map(([kind]) => kind), ['duplicate']);
  t.match(seen[0]?.[1], /record c is at data-0@2 and data-0@3, and its batch was sent by an idempotent producer \(3 attempts\)/);
  t.equal(twice.duplicates, 0, 'not counted as an allowed copy');
  t.end();
});

void t.test('a retried batch stored twice is a counted duplicate, not a violation; reports are capped', (t) => {
  const { history: h, seen } = history();
  h.sent('b1', 0, ['a'], -1);
  h.sent('b1', 0, ['a'], -1);
  h.acknowledged('b1', ['a'], 1);
  for (let i = 0; i < 5; i += 1) {
    h.sent(`x${i}`, 0, [`x${i}`], -1);
    h.acknowledged(`x${i}`, [`x${i}`], 10 + i);
  }
  // An acks=1 batch whose acknowledged copy is gone but whose earlier attempt landed (sim seed 75).
  h.sent('one', 0, ['o'], 1);
  h.sent('one', 0, ['o'], 1);
  h.acknowledged('one', ['o'], 7);
  const counts = h.check([...log('a', 'a'), { partition: 0, offset: 2, value: 'o' }], 2);
  t.equal(counts.lostUnguaranteed, 1, 'its acknowledged copy is lost, which acks=1 allows');
  t.equal(counts.duplicates, 1);
  t.equal(counts.lost, 5, 'every loss counted');
  t.equal(seen.length, 2, 'only the first two reported');
  t.throws(() => { h.acknowledged('never', ['q'], 0); }, /never sent/);
  t.end();
});
