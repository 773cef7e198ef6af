// Damage found when a partition log opens: the log is cut at the first bad batch, the segments
// after it are deleted, and the recovery report says what was cut (issue 9).
import t, { type Test } from 'tap';
import type { SimDisk } from '../../sim/disk.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import { BATCH_HEADER_BYTES, readBatchHeader } from '../../storage/record-batch.js';
import { makeBatch, readAll, simLog, valuesOf, type SimLog } from '../helpers/log.js';

const DIR = 'topic-0';
const BATCH_COUNT = 40;

interface BatchAt {
  readonly position: number;
  readonly baseOffset: number;
  readonly sizeBytes: number;
}

/** A closed log of several segments: 40 batches of 2 records, the epoch moving every 10 batches. */
async function closedLog(): Promise<{ sim: SimLog; logs: string[]; values: string[] }> {
  const sim = simLog({ segmentBytesMax: 2048, indexIntervalBytes: 256 });
  const log = await sim.open();
  for (let i = 0; i < BATCH_COUNT; i += 1) await log.append(makeBatch(`v${i}`, 2, 1_700_000_000_000 + i, 60), { leaderEpoch: Math.floor(i / 10) });
  const values = valuesOf(await readAll(log));
  await log.close();
  const logs = sim.disk.fileNames().filter((name) => name.endsWith('.log'));
  return { sim, logs, values };
}

/** The batches of a segment file, from their headers. */
async function batchesIn(disk: SimDisk, path: string): Promise<BatchAt[]> {
  const file = await disk.open(path, { create: false });
  const bytes = await file.read(0, file.sizeBytes);
  await file.close();
  const batches: BatchAt[] = [];
  for (let position = 0; position < bytes.length;) {
    const header = readBatchHeader(bytes, position);
    batches.push({ position, baseOffset: header.baseOffset, sizeBytes: header.sizeBytes });
    position += header.sizeBytes;
  }
  return batches;
}

async function sizeOf(disk: SimDisk, path: string): Promise<number> {
  const file = await disk.open(path, { create: false });
  const size = file.sizeBytes;
  await file.close();
  return size;
}

async function overwrite(disk: SimDisk, path: string, position: number, bytes: Buffer): Promise<void> {
  const file = await disk.open(path, { create: false });
  await file.write(position, [bytes]);
  await file.sync();
  await file.close();
}

async function flipByte(disk: SimDisk, path: string, position: number): Promise<void> {
  const file = await disk.open(path, { create: false });
  const byte = (await file.read(position, 1))[0] ?? 0;
  await file.write(position, [Buffer.from([byte ^ 0x10])]);
  await file.sync();
  await file.close();
}

async function removeIndexes(disk: SimDisk, logPath: string): Promise<void> {
  await disk.remove(logPath.replace(/\.log$/, '.index'));
  await disk.remove(logPath.replace(/\.log$/, '.timeindex'));
}

async function bytesOfSegmentsAfter(disk: SimDisk, logs: readonly string[], index: number): Promise<number> {
  let total = 0;
  for (const path of logs.slice(index + 1)) total += await sizeOf(disk, path);
  return total;
}

/**
 * What every cut must leave: the log ends at `end`, holds exactly the values below it,
 * no file of a deleted segment is left, the epoch cache ends inside the log, appends go on
 * at the new end with dense offsets, and a second open finds nothing to cut.
 */
async function checkCutLog(t: Test, sim: SimLog, log: PartitionLog, end: number, values: readonly string[], keptLogs: readonly string[]): Promise<void> {
  t.equal(log.logEndOffset, end, 'the log ends at the first bad batch');
  t.equal(log.recovery.endOffset, end);
  t.same(valuesOf(await readAll(log)), values.slice(0, end), 'the valid prefix is kept byte for byte');
  const segmentFiles = sim.disk.fileNames().filter((name) => /\.(log|index|timeindex)$/.test(name));
  t.ok(segmentFiles.every((name) => keptLogs.some((kept) => name.startsWith(kept.replace(/\.log$/, '')))), 'no file of a deleted segment is left');
  t.same(sim.disk.fileNames().filter((name) => name.endsWith('.log')), keptLogs);
  t.ok(log.epochEntries.every((entry) => entry.startOffset < end), 'the epoch cache ends inside the log');
  t.equal(log.segmentInfos().at(-1)?.nextOffset, end);
  const appended = await log.append(makeBatch('after', 3), { leaderEpoch: 9 });
  t.same([appended.baseOffset, appended.lastOffset], [end, end + 2], 'appends continue at the new end');
  const infos = log.segmentInfos();
  const entries = log.epochEntries;
  const bytes = await readAll(log);
  t.same(valuesOf(bytes), [...values.slice(0, end), 'after-0', 'after-1', 'after-2'], 'offsets are dense across the cut');
  await log.close();
  const again = await sim.open();
  t.equal(again.recovery.damage, null, 'a second open finds nothing to cut');
  t.equal(again.recovery.truncatedBytes, 0);
  t.same(again.segmentInfos(), infos);
  t.same(again.epochEntries, entries);
  t.same(await readAll(again), bytes);
  await again.close();
}

void t.test('a bit flip in the middle of a sealed segment without index files cuts the log there', async (t) => {
  const { sim, logs, values } = await closedLog();
  t.ok(logs.length >= 4, `${logs.length} segments`);
  const damagedIndex = 1;
  const path = logs[damagedIndex] ?? '';
  const batches = await batchesIn(sim.disk, path);
  const bad = batches[Math.floor(batches.length / 2)];
  t.ok(bad !== undefined && bad.position > 0, 'the flip is in the middle of the segment');
  if (bad === undefined) return;
  await flipByte(sim.disk, path, bad.position + BATCH_HEADER_BYTES + 5);
  await removeIndexes(sim.disk, path);
  const removedBytes = (await sizeOf(sim.disk, path)) - bad.position + (await bytesOfSegmentsAfter(sim.disk, logs, damagedIndex));
  const log = await sim.open();
  t.same(log.recovery.damage, { kind: 'sealed-segment', file: path.slice(DIR.length + 1), offset: bad.baseOffset, position: bad.position, segmentsRemoved: logs.length - 2 });
  t.equal(log.recovery.truncatedBytes, removedBytes, 'truncatedBytes counts the cut tail and the deleted segments');
  t.equal(log.recovery.segmentCount, 2);
  t.same(log.epochEntries.map((entry) => entry.epoch), [...new Set(values.slice(0, bad.baseOffset).map((_, offset) => Math.floor(offset / 20)))], 'epochs past the cut are gone');
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs.slice(0, 2));
});

void t.test('a sealed segment cut short in a batch is cut at that batch', async (t) => {
  const { sim, logs, values } = await closedLog();
  const damagedIndex = 2;
  const path = logs[damagedIndex] ?? '';
  const batches = await batchesIn(sim.disk, path);
  const bad = batches.at(-2);
  if (bad === undefined) return t.fail('the segment has batches');
  const file = await sim.disk.open(path, { create: false });
  await file.truncate(bad.position + 30);
  await file.sync();
  await file.close();
  const removedBytes = 30 + (await bytesOfSegmentsAfter(sim.disk, logs, damagedIndex));
  const log = await sim.open();
  t.same(log.recovery.damage, { kind: 'sealed-segment', file: path.slice(DIR.length + 1), offset: bad.baseOffset, position: bad.position, segmentsRemoved: logs.length - 3 }, 'found with the index files still there');
  t.equal(log.recovery.truncatedBytes, removedBytes);
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs.slice(0, 3));
});

void t.test('a huge length in the last batch header of a sealed segment cuts the log there', async (t) => {
  const { sim, logs, values } = await closedLog();
  const path = logs[0] ?? '';
  const bad = (await batchesIn(sim.disk, path)).at(-1);
  if (bad === undefined) return t.fail('the segment has batches');
  const huge = Buffer.alloc(4);
  huge.writeInt32BE(0x7fff_ff00);
  await overwrite(sim.disk, path, bad.position + 8, huge); // batchLength follows the 8-byte baseOffset
  const log = await sim.open();
  t.same(log.recovery.damage, { kind: 'sealed-segment', file: path.slice(DIR.length + 1), offset: bad.baseOffset, position: bad.position, segmentsRemoved: logs.length - 1 });
  t.equal(log.recovery.segmentCount, 1);
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs.slice(0, 1));
});

void t.test('a bad first batch in a sealed segment leaves it empty as the active segment', async (t) => {
  const { sim, logs, values } = await closedLog();
  const path = logs[1] ?? '';
  const bad = (await batchesIn(sim.disk, path))[0];
  if (bad === undefined) return t.fail('the segment has batches');
  await flipByte(sim.disk, path, BATCH_HEADER_BYTES + 1);
  await removeIndexes(sim.disk, path);
  const log = await sim.open();
  t.equal(log.recovery.damage?.position, 0);
  t.equal(log.segmentInfos().at(-1)?.sizeBytes, 0);
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs.slice(0, 2));
});

void t.test('a bit flip in the active segment is cut as its tail', async (t) => {
  const { sim, logs, values } = await closedLog();
  const path = logs.at(-1) ?? '';
  const batches = await batchesIn(sim.disk, path);
  t.ok(batches.length >= 3, `${batches.length} batches in the active segment`);
  const bad = batches[1];
  if (bad === undefined) return t.fail('the segment has batches');
  await flipByte(sim.disk, path, bad.position + bad.sizeBytes - 3);
  const fileBytes = await sizeOf(sim.disk, path);
  const log = await sim.open();
  t.same(log.recovery.damage, { kind: 'active-tail', file: path.slice(DIR.length + 1), offset: bad.baseOffset, position: bad.position, segmentsRemoved: 0 });
  t.equal(log.recovery.truncatedBytes, fileBytes - bad.position);
  t.equal(log.recovery.segmentCount, logs.length);
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs);
});

void t.test('a crash while deleting the later segments leaves a log the next open cuts the same way', async (t) => {
  const { sim, logs, values } = await closedLog();
  const path = logs[1] ?? '';
  const bad = (await batchesIn(sim.disk, path))[2];
  if (bad === undefined) return t.fail('the segment has batches');
  await flipByte(sim.disk, path, bad.position + BATCH_HEADER_BYTES + 2);
  await removeIndexes(sim.disk, path);
  // What the cut leaves after deleting only the last segment (it goes first).
  const last = logs.at(-1) ?? '';
  await removeIndexes(sim.disk, last);
  await sim.disk.remove(last);
  await sim.disk.syncDir(DIR);
  const log = await sim.open();
  t.equal(log.recovery.damage?.kind, 'sealed-segment');
  t.equal(log.recovery.damage?.segmentsRemoved, logs.length - 3);
  await checkCutLog(t, sim, log, bad.baseOffset, values, logs.slice(0, 2));
});

void t.test('an intact log reports no damage', async (t) => {
  const { sim } = await closedLog();
  const log = await sim.open();
  t.same(log.recovery, { truncatedBytes: 0, segmentCount: log.segmentInfos().length, endOffset: BATCH_COUNT * 2, damage: null });
  await log.close();
});
