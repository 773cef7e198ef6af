import t from 'tap';
import { DriftwoodError } from '../../storage/errors.js';
import { readBatchHeader, validateBatch } from '../../storage/record-batch.js';
import { SeededRng } from '../../sim/rng.js';
import { batchesOf, makeBatch, readAll, simLog, valuesOf } from '../helpers/log.js';

void t.test('append assigns dense offsets and the leader epoch; read returns the same batches', async (t) => {
  const { open } = simLog();
  const log = await open();
  t.equal(log.logStartOffset, 0);
  t.equal(log.logEndOffset, 0);
  const first = await log.append(makeBatch('a', 3), { leaderEpoch: 5 });
  const second = await log.append(makeBatch('b', 2), { leaderEpoch: 5 });
  t.same(first, { baseOffset: 0, lastOffset: 2, recordCount: 3, logAppendTimeMs: -1 });
  t.same(second, { baseOffset: 3, lastOffset: 4, recordCount: 2, logAppendTimeMs: -1 });
  t.equal(log.logEndOffset, 5);
  const all = await log.read(0, { bytesMax: 1 << 20 });
  t.equal(all.nextOffset, 5);
  t.same(valuesOf(all.bytes), ['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
  for (const batch of batchesOf(all.bytes)) {
    t.equal(readBatchHeader(batch, 0).partitionLeaderEpoch, 5);
    t.doesNotThrow(() => validateBatch(batch, 0, batch.length, 1 << 20), 'stored batch keeps a valid CRC');
  }
  const fromMiddle = await log.read(4, { bytesMax: 1 << 20 });
  t.same(valuesOf(fromMiddle.bytes), ['b-0', 'b-1'], 'a read starts at the batch holding the offset');
  t.same(log.epochEntries, [{ epoch: 5, startOffset: 0 }]);
  await log.close();
});

void t.test('reads honour bytesMax softly and offsetEnd strictly', async (t) => {
  const { open } = simLog();
  const log = await open();
  for (let i = 0; i < 5; i += 1) await log.append(makeBatch(`b${i}`, 2, 1_700_000_000_000, 200), { leaderEpoch: 0 });
  const size = readBatchHeader((await log.read(0, { bytesMax: 1 })).bytes, 0).sizeBytes;
  const one = await log.read(0, { bytesMax: 1 });
  t.equal(one.bytes.length, size, 'the first batch comes whole even when larger than bytesMax');
  const two = await log.read(0, { bytesMax: size * 2 + 10 });
  t.equal(batchesOf(two.bytes).length, 2);
  const belowEnd = await log.read(0, { bytesMax: 1 << 20, offsetEnd: 5 });
  t.equal(belowEnd.nextOffset, 4, 'a batch reaching offsetEnd is not returned');
  const atEnd = await log.read(10, { bytesMax: 100 });
  t.equal(atEnd.bytes.length, 0);
  t.equal(atEnd.nextOffset, 10);
  await t.rejects(log.read(11, { bytesMax: 100 }), { code: 'OFFSET_OUT_OF_RANGE' });
  await t.rejects(log.read(-1, { bytesMax: 100 }), { code: 'OFFSET_OUT_OF_RANGE' });
  await t.rejects(log.read(0, { bytesMax: 0 }), { code: 'INVALID_REQUEST' });
  await t.rejects(log.read(0.5, { bytesMax: 10 }), { code: 'INVALID_REQUEST' });
  await log.close();
});

void t.test('bad batches are refused with typed errors and leave the log unchanged', async (t) => {
  const { open } = simLog({ messageBytesMax: 2000 });
  const log = await open();
  await log.append(makeBatch('ok', 2), { leaderEpoch: 1 });
  const before = await readAll(log);
  const badCrc = makeBatch('x', 2);
  badCrc[badCrc.length - 1] = (badCrc[badCrc.length - 1] ?? 0) ^ 0xff;
  await t.rejects(log.append(badCrc, { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' });
  const badMagic = makeBatch('x', 2);
  badMagic[16] = 1;
  await t.rejects(log.append(badMagic, { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' });
  const overrun = makeBatch('x', 2);
  overrun.writeInt32BE(overrun.length, 8);
  await t.rejects(log.append(overrun, { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' });
  await t.rejects(log.append(makeBatch('x', 2).subarray(0, 40), { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' });
  await t.rejects(log.append(Buffer.alloc(0), { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' });
  await t.rejects(log.append(makeBatch('x', 2, 0, 3000), { leaderEpoch: 1 }), { code: 'MESSAGE_TOO_LARGE' });
  const goodThenBad = Buffer.concat([makeBatch('y', 1), badCrc]);
  await t.rejects(log.append(goodThenBad, { leaderEpoch: 1 }), { code: 'CORRUPT_MESSAGE' }, 'one bad batch refuses the whole request');
  await t.rejects(log.append(makeBatch('old', 1), { leaderEpoch: 0 }), { code: 'FENCED_LEADER_EPOCH' });
  t.equal(log.logEndOffset, 2);
  t.same(await readAll(log), before, 'the log is byte-identical');
  await log.close();
});

void t.test('segments roll by size and by age; reads and offsets cross them', async (t) => {
  const { open } = simLog({ segmentBytesMax: 4096, indexIntervalBytes: 256 });
  const log = await open();
  for (let i = 0; i < 40; i += 1) await log.append(makeBatch(`s${i}`, 3, 1_700_000_000_000, 100), { leaderEpoch: 0 });
  const infos = log.segmentInfos();
  t.ok(infos.length >= 4, `rolled into ${infos.length} segments`);
  for (const info of infos) t.ok(info.sizeBytes <= 4096);
  t.same(valuesOf(await readAll(log, 0, 700)).length, 120);
  for (let offset = 0; offset < 120; offset += 7) {
    const result = await log.read(offset, { bytesMax: 1 });
    const first = readBatchHeader(result.bytes, 0);
    t.ok(first.baseOffset <= offset && offset <= first.baseOffset + first.lastOffsetDelta, `read(${offset}) starts at the batch holding it`);
  }
  await log.close();

  const aged = simLog({ segmentAgeMsMax: 1000 });
  const agedLog = await aged.open();
  await agedLog.append(makeBatch('t0', 1, 1_000_000), { leaderEpoch: 0 });
  await agedLog.append(makeBatch('t1', 1, 1_000_500), { leaderEpoch: 0 });
  t.equal(agedLog.segmentInfos().length, 1);
  await agedLog.append(makeBatch('t2', 1, 1_001_000), { leaderEpoch: 0 });
  t.equal(agedLog.segmentInfos().length, 2, 'a batch 1000 ms newer than the segment\'s first rolls it');
  await agedLog.close();
});

void t.test('close and reopen keep every batch, the indexes and the epochs', async (t) => {
  const { open, disk } = simLog({ segmentBytesMax: 2048, indexIntervalBytes: 128 });
  const log = await open();
  for (let i = 0; i < 30; i += 1) await log.append(makeBatch(`r${i}`, 2, 1_700_000_000_000 + i * 10, 50), { leaderEpoch: Math.floor(i / 10) });
  const before = await readAll(log);
  const segments = log.segmentInfos();
  const epochs = log.epochEntries;
  await log.close();
  const reopened = await open();
  t.same(reopened.segmentInfos(), segments);
  t.same(reopened.epochEntries, epochs);
  t.same(await readAll(reopened), before);
  t.equal(reopened.recovery.truncatedBytes, 0);
  t.ok(disk.fileNames().some((name) => name.endsWith('.index')), 'sealed segments have index files');
  await reopened.close();
});

void t.test('missing or damaged index files are rebuilt from the log', async (t) => {
  const { open, disk } = simLog({ segmentBytesMax: 2048, indexIntervalBytes: 128 });
  const log = await open();
  for (let i = 0; i < 30; i += 1) await log.append(makeBatch(`i${i}`, 2, 1_700_000_000_000, 50), { leaderEpoch: 0 });
  const before = await readAll(log);
  await log.close();
  const indexes = disk.fileNames().filter((name) => name.endsWith('.index'));
  const timeIndexes = disk.fileNames().filter((name) => name.endsWith('.timeindex'));
  t.ok(indexes.length >= 2);
  await disk.remove(indexes[0] ?? '');
  const damaged = await disk.open(indexes[1] ?? '', { create: false });
  await damaged.write(0, [Buffer.from([0xff, 0xff, 0xff])]);
  await damaged.close();
  const damagedTime = await disk.open(timeIndexes[0] ?? '', { create: false });
  await damagedTime.truncate(5);
  await damagedTime.close();
  const reopened = await open();
  t.same(await readAll(reopened, 0, 300), before);
  for (let offset = 0; offset < 60; offset += 5) {
    const first = readBatchHeader((await reopened.read(offset, { bytesMax: 1 })).bytes, 0);
    t.ok(first.baseOffset <= offset && offset <= first.baseOffset + first.lastOffsetDelta);
  }
  await reopened.close();
});

void t.test('a torn tail is cut at recovery; a damaged sealed segment cuts the log there', async (t) => {
  const { open, disk } = simLog({ segmentBytesMax: 2048 });
  const log = await open();
  for (let i = 0; i < 20; i += 1) await log.append(makeBatch(`c${i}`, 2, 1_700_000_000_000, 50), { leaderEpoch: 0 });
  const end = log.logEndOffset;
  await log.close();
  const logs = disk.fileNames().filter((name) => name.endsWith('.log')).sort();
  const active = await disk.open(logs.at(-1) ?? '', { create: false });
  const size = active.sizeBytes;
  await active.write(size, [makeBatch('torn', 3).subarray(0, 50)]);
  await active.close();
  const recovered = await open();
  t.equal(recovered.recovery.truncatedBytes, 50);
  t.equal(recovered.recovery.damage?.kind, 'active-tail');
  t.equal(recovered.logEndOffset, end);
  await recovered.append(makeBatch('after', 1), { leaderEpoch: 0 });
  t.equal(recovered.logEndOffset, end + 1);
  await recovered.close();

  const sealed = await disk.open(logs[0] ?? '', { create: false });
  await sealed.write(100, [Buffer.from('garbage in a sealed segment')]);
  await sealed.close();
  const indexes = disk.fileNames().filter((name) => name.endsWith('.index')).sort();
  await disk.remove(indexes[0] ?? '');
  const cut = await open();
  t.equal(cut.recovery.damage?.kind, 'sealed-segment', 'a damaged sealed segment no longer stops the open');
  t.equal(cut.recovery.damage?.file, (logs[0] ?? '').slice('topic-0/'.length));
  t.equal(cut.segmentInfos().length, 1, 'the segments after it are gone');
  t.ok(cut.logEndOffset < end);
  await cut.close();
});

void t.test('truncateTo cuts whole batches, across segments, and the epoch cache', async (t) => {
  const { open } = simLog({ segmentBytesMax: 2048 });
  const log = await open();
  for (let i = 0; i < 30; i += 1) await log.append(makeBatch(`t${i}`, 3, 1_700_000_000_000, 40), { leaderEpoch: Math.floor(i / 10) });
  t.same(log.epochEntries.map((e) => e.epoch), [0, 1, 2]);
  t.equal(await log.truncateTo(200), 90, 'past the end: nothing to cut');
  t.equal(await log.truncateTo(50), 48, 'offset 50 is inside the batch 48..50, which goes whole');
  t.equal(log.logEndOffset, 48);
  t.same(log.epochEntries, [{ epoch: 0, startOffset: 0 }, { epoch: 1, startOffset: 30 }]);
  t.same(log.endOffsetForEpoch(0), { epoch: 0, endOffset: 30 });
  t.same(log.endOffsetForEpoch(1), { epoch: 1, endOffset: 48 });
  t.same(log.endOffsetForEpoch(2), { epoch: -1, endOffset: -1 });
  const values = valuesOf(await readAll(log));
  t.equal(values.length, 48);
  await log.append(makeBatch('new', 2), { leaderEpoch: 3 });
  t.equal(log.logEndOffset, 50);
  t.same(log.endOffsetForEpoch(2), { epoch: 1, endOffset: 48 });
  await t.rejects(log.truncateTo(-1), { code: 'OFFSET_OUT_OF_RANGE' });
  t.equal(await log.truncateTo(0), 0);
  t.equal(log.logEndOffset, 0);
  t.equal(log.segmentInfos().length, 1);
  t.same(log.epochEntries, []);
  await log.close();
});

void t.test('follower appends keep offsets and epochs and must continue the log', async (t) => {
  const leader = await simLog().open();
  const follower = await simLog().open();
  await leader.append(makeBatch('f0', 2), { leaderEpoch: 1 });
  await leader.append(makeBatch('f1', 2), { leaderEpoch: 2 });
  const copied = (await leader.read(0, { bytesMax: 1 << 20 })).bytes;
  await t.rejects(follower.appendAsFollower(Buffer.from(copied.subarray(readBatchHeader(copied, 0).sizeBytes))), { code: 'OFFSET_OUT_OF_RANGE' });
  const result = await follower.appendAsFollower(Buffer.from(copied));
  t.same(result, { baseOffset: 0, lastOffset: 3, recordCount: 4, logAppendTimeMs: -1 });
  t.same(follower.epochEntries, leader.epochEntries);
  t.same(await readAll(follower), await readAll(leader));
  const gap = Buffer.from(copied);
  gap.writeBigInt64BE(7n, readBatchHeader(gap, 0).sizeBytes);
  await t.rejects(follower.appendAsFollower(gap), { code: 'CORRUPT_MESSAGE' });
  await follower.truncateFullyAndStartAt(100);
  t.equal(follower.logStartOffset, 100);
  t.equal(follower.logEndOffset, 100);
  await t.rejects(follower.read(0, { bytesMax: 10 }), { code: 'OFFSET_OUT_OF_RANGE' });
  await leader.close();
  await follower.close();
});

void t.test('retention deletes whole old segments by time and by bytes, never the active one', async (t) => {
  const { open, clock } = simLog({ segmentBytesMax: 2048, retentionMs: 60_000, retentionBytes: -1 });
  const log = await open();
  const start = clock.nowMs();
  for (let i = 0; i < 30; i += 1) await log.append(makeBatch(`x${i}`, 2, start + i * 1000, 50), { leaderEpoch: i < 15 ? 0 : 1 });
  const segments = log.segmentInfos();
  t.equal(await log.applyRetention(), 0, 'nothing is old yet');
  clock.advance(30_000 + 60_001);
  const deleted = await log.applyRetention();
  t.ok(deleted > 0, `deleted ${deleted} segments`);
  for (const info of segments.slice(0, deleted)) t.ok(info.maxTimestampMs < clock.nowMs() - 60_000);
  t.equal(log.logStartOffset, segments[deleted]?.baseOffset);
  await t.rejects(log.read(0, { bytesMax: 10 }), { code: 'OFFSET_OUT_OF_RANGE' });
  t.equal(log.epochEntries[0]?.startOffset, log.logStartOffset);
  clock.advance(10 * 60_000);
  await log.applyRetention();
  t.equal(log.segmentInfos().length, 1, 'the active segment stays, however old');
  await log.close();

  const sized = simLog({ segmentBytesMax: 2048, retentionMs: -1, retentionBytes: 5000 });
  const sizedLog = await sized.open();
  for (let i = 0; i < 30; i += 1) await sizedLog.append(makeBatch(`y${i}`, 2, 0, 50), { leaderEpoch: 0 });
  await sizedLog.applyRetention();
  t.ok(sizedLog.sizeBytes >= 5000 - 2048 && sizedLog.sizeBytes <= 5000 + 2048, `kept ${sizedLog.sizeBytes} bytes`);
  const infos = sizedLog.segmentInfos();
  t.ok(sizedLog.sizeBytes - (infos[0]?.sizeBytes ?? 0) < 5000, 'deleting one more would go under the limit');
  await sizedLog.close();
});

void t.test('offsetForTimestamp finds the first record at or after a time', async (t) => {
  const { open } = simLog({ segmentBytesMax: 2048, indexIntervalBytes: 100 });
  const log = await open();
  for (let i = 0; i < 40; i += 1) await log.append(makeBatch(`ts${i}`, 4, 1_000_000 + i * 100, 20), { leaderEpoch: 0 });
  t.same(await log.offsetForTimestamp(0), { offset: 0, timestampMs: 1_000_000 });
  t.same(await log.offsetForTimestamp(1_000_002), { offset: 2, timestampMs: 1_000_002 });
  t.same(await log.offsetForTimestamp(1_000_050), { offset: 4, timestampMs: 1_000_100 });
  t.same(await log.offsetForTimestamp(1_003_901), { offset: 157, timestampMs: 1_003_901 });
  t.equal(await log.offsetForTimestamp(2_000_000), null);
  await t.rejects(log.offsetForTimestamp(Number.NaN), { code: 'INVALID_REQUEST' });
  await log.close();
});

void t.test('LogAppendTime stamps the broker clock and keeps the CRC valid', async (t) => {
  const { open, clock } = simLog({ timestampType: 'LogAppendTime' });
  const log = await open();
  const result = await log.append(makeBatch('lat', 3, 5), { leaderEpoch: 0 });
  t.equal(result.logAppendTimeMs, clock.nowMs());
  const stored = (await log.read(0, { bytesMax: 1 << 20 })).bytes;
  const header = validateBatch(stored, 0, stored.length, 1 << 20);
  t.equal(header.maxTimestamp, clock.nowMs());
  t.equal(header.attributes & 0x08, 0x08);
  await log.close();
});

void t.test('flush policy: every append syncs; interval syncs on the timer or the byte limit', async (t) => {
  const every = simLog({ flushIntervalMs: 0 });
  const everyLog = await every.open();
  const appends = Array.from({ length: 20 }, (_, i) => everyLog.append(makeBatch(`g${i}`, 1), { leaderEpoch: 0 }));
  await Promise.all(appends);
  t.equal(everyLog.flushedOffset, 20, 'acknowledged appends are durable');
  every.disk.crash(new SeededRng(1));
  const afterCrash = await every.open();
  t.equal(afterCrash.logEndOffset, 20, 'nothing acknowledged is lost in a crash');

  const interval = simLog({ flushIntervalMs: 1000 });
  const intervalLog = await interval.open();
  await intervalLog.append(makeBatch('h', 5), { leaderEpoch: 0 });
  t.equal(intervalLog.flushedOffset, 0);
  interval.clock.advance(1000);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(intervalLog.flushedOffset, 5, 'the timer synced');
  await intervalLog.append(makeBatch('h', 1), { leaderEpoch: 0 });
  t.equal(await intervalLog.flush(), 6);
  await intervalLog.close();

  const bytes = simLog({ flushIntervalMs: 60_000, flushUnsyncedBytesMax: 500 });
  const bytesLog = await bytes.open();
  await bytesLog.append(makeBatch('b', 1, 0, 10), { leaderEpoch: 0 });
  t.equal(bytesLog.flushedOffset, 0);
  await bytesLog.append(makeBatch('b', 1, 0, 600), { leaderEpoch: 0 });
  t.equal(bytesLog.flushedOffset, 2, 'passing the byte limit synced');
  await bytesLog.close();
});

void t.test('group commit: concurrent appends share writes and syncs', async (t) => {
  const { open, disk } = simLog({ flushIntervalMs: 0 });
  const log = await open();
  let syncs = 0;
  await log.append(makeBatch('first', 1), { leaderEpoch: 0 });
  const original = disk.open.bind(disk);
  disk.open = async (path, options) => {
    const handle = await original(path, options);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => { syncs += 1; await sync(); };
    return handle;
  };
  await log.roll(); // the new active segment's file is opened through the counting open
  const before = syncs;
  await log.append(makeBatch('solo', 1), { leaderEpoch: 0 });
  t.equal(syncs - before, 1, 'one append, one sync');
  await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(makeBatch(`gc${i}`, 1), { leaderEpoch: 0 })));
  t.ok(syncs - before <= 3, `101 appends took ${syncs - before} syncs`);
  t.equal(log.logEndOffset, 102);
  await log.close();
});

void t.test('config and input errors', async (t) => {
  const { open } = simLog();
  await t.rejects(open({ segmentBytesMax: 10 }), { code: 'INVALID_CONFIG' });
  await t.rejects(open({ messageBytesMax: 2 ** 31 }), { code: 'INVALID_CONFIG' });
  await t.rejects(open({ flushIntervalMs: -5 }), { code: 'INVALID_CONFIG' });
  await t.rejects(open({ timestampType: 'Bogus' as 'CreateTime' }), { code: 'INVALID_CONFIG' });
  const log = await open();
  await log.close();
  await t.rejects(log.append(makeBatch('late', 1), { leaderEpoch: 0 }), { code: 'LOG_CLOSED' });
  await t.rejects(log.read(0, { bytesMax: 10 }), { code: 'LOG_CLOSED' });
  t.ok(new DriftwoodError('CORRUPT_MESSAGE', 'x').toJSON().error === 'CORRUPT_MESSAGE');
});

// Found by the model test (seed 484461457, replayPath "/m:D"): retention that deleted every
// batch kept an epoch entry at the log end, which recovery then dropped, so the cache
// disagreed before and after a restart.
void t.test('regression: retention that empties the log leaves the epoch cache as recovery would', async (t) => {
  const { open, clock } = simLog({ segmentBytesMax: 1024, indexIntervalBytes: 0, flushIntervalMs: 0, retentionMs: 30_000, retentionBytes: -1 });
  const log = await open();
  await Promise.all([log.append(makeBatch('a', 2, clock.nowMs()), { leaderEpoch: 0 }), log.append(makeBatch('b', 2, clock.nowMs()), { leaderEpoch: 0 })]);
  await log.roll();
  clock.advance(30_002);
  t.equal(await log.applyRetention(), 1);
  t.equal(log.logStartOffset, 4);
  t.same(log.epochEntries, []);
  await log.close();
  const reopened = await open();
  t.same(reopened.epochEntries, []);
  await reopened.close();
});

// Found by the model test (seed -1644885213, replayPath "DBLN/k:1"): a crash after retention
// removed a segment but before it saved the epoch cache left, after recovery, an epoch entry
// at the end of an empty log.
void t.test('regression: crash between segment deletion and the epoch checkpoint', async (t) => {
  const { open, clock, disk } = simLog({ segmentBytesMax: 1024, flushIntervalMs: 0, retentionMs: 30_000 });
  const log = await open();
  await log.append(makeBatch('a', 1, clock.nowMs()), { leaderEpoch: 0 });
  clock.advance(30_001);
  await log.roll();
  disk.armCrash(4, new SeededRng(1));
  await t.rejects(log.applyRetention());
  t.ok(disk.crashed);
  disk.reboot();
  const recovered = await open();
  t.equal(recovered.logStartOffset, 1);
  t.equal(recovered.logEndOffset, 1);
  t.same(recovered.epochEntries, []);
  await recovered.close();
});
