// The partition log's header scan (what the producer state is rebuilt from) and the exact
// newest timestamp of a segment after a truncation (what the rebuild skips segments by).
import t from 'tap';
import { simLog, makeBatch } from '../helpers/log.js';

void t.test('scanBatchHeaders visits every batch from the one holding an offset, across segments', async (t) => {
  const { open } = simLog({ segmentBytesMax: 1024, flushIntervalMs: 0 });
  const log = await open();
  for (let i = 0; i < 40; i += 1) await log.append(makeBatch(`b${i}`, 2, 1_000 + i), { leaderEpoch: 0 });
  t.ok(log.segmentInfos().length > 3);
  const bases: number[] = [];
  await log.scanBatchHeaders(0, (header) => { bases.push(header.baseOffset); });
  t.same(bases, Array.from({ length: 40 }, (_, i) => i * 2));
  const tail: number[] = [];
  await log.scanBatchHeaders(51, (header) => { tail.push(header.baseOffset); });
  t.same(tail, Array.from({ length: 15 }, (_, i) => 50 + i * 2), 'from the batch holding offset 51');
  const none: number[] = [];
  await log.scanBatchHeaders(80, (header) => { none.push(header.baseOffset); });
  t.same(none, []);
  await t.rejects(log.scanBatchHeaders(-1, () => undefined), { code: 'OFFSET_OUT_OF_RANGE' });
  await log.close();
});

void t.test('after a truncation a segment knows its newest timestamp exactly, not a lower bound', async (t) => {
  const { open } = simLog({ indexIntervalBytes: 4096, flushIntervalMs: 0 });
  const log = await open();
  // Rising timestamps in batches smaller than the index interval: one index entry at the start.
  for (let i = 0; i < 10; i += 1) await log.append(makeBatch(`b${i}`, 1, 1_000 + i * 100), { leaderEpoch: 0 });
  t.equal(log.segmentInfos()[0]?.maxTimestampMs, 1_900);
  await log.truncateTo(6);
  t.equal(log.segmentInfos()[0]?.maxTimestampMs, 1_500, 'the newest batch left (offset 5), not the time index entry (offset 0)');
  await log.close();
});
