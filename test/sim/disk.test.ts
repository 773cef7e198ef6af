import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { SimDisk } from '../../sim/disk.js';
import { SeededRng } from '../../sim/rng.js';
import type { DiskFile } from '../../storage/disk.js';
import type { Rng } from '../../storage/rng.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** An Rng that returns exactly the scripted draws, so a test pins every crash decision. */
class ScriptedRng implements Rng {
  constructor(private readonly draws: number[]) {}

  int(maxExclusive: number): number {
    const value = this.draws.shift();
    assert(value !== undefined, 'script ran out of draws');
    assert(Number.isInteger(value) && value >= 0 && value < maxExclusive, `scripted ${value} not in [0, ${maxExclusive})`);
    return value;
  }

  float(): number {
    const value = this.draws.shift();
    assert(value !== undefined, 'script ran out of draws');
    assert(value >= 0 && value < 1);
    return value;
  }

  get remaining(): number {
    return this.draws.length;
  }
}

async function readAll(disk: SimDisk, path: string): Promise<string> {
  const file = await disk.open(path, { create: false });
  const content = await file.read(0, file.sizeBytes);
  await file.close();
  return content.toString('latin1');
}

/** A file that exists durably (created and its directory synced) holding `synced` durably. */
async function durableFile(disk: SimDisk, path: string, synced: string): Promise<DiskFile> {
  const file = await disk.open(path, { create: true });
  await disk.syncDir('.');
  await file.write(0, [text(synced)]);
  await file.sync();
  return file;
}

void t.test('synced data and synced names survive a crash', async (t) => {
  const disk = new SimDisk();
  await disk.mkdir('topic-0');
  const file = await disk.open('topic-0/0.log', { create: true });
  await disk.syncDir('topic-0');
  await file.write(0, [text('hello '), text('world')]);
  await file.sync();
  for (let seed = 0; seed < 20; seed++) disk.crash(new SeededRng(seed));
  t.equal(await readAll(disk, 'topic-0/0.log'), 'hello world');
  t.same(disk.fileNames(), ['topic-0/0.log']);
  t.equal(disk.totalBytes(), 11);
});

void t.test('a crash keeps a prefix of the unsynced writes', async (t) => {
  const cases: Array<{ draws: number[]; expected: string }> = [
    { draws: [0, 0.9], expected: 'AAAA' }, // nothing kept, the first dropped write not torn
    { draws: [1, 0.9], expected: 'AAAABB' },
    { draws: [2], expected: 'AAAABBCC' }, // everything kept: nothing dropped, no tear draw
  ];
  for (const { draws, expected } of cases) {
    const disk = new SimDisk();
    const file = await durableFile(disk, 'a.log', 'AAAA');
    await file.write(4, [text('BB')]);
    await file.write(6, [text('CC')]);
    const rng = new ScriptedRng(draws);
    disk.crash(rng);
    t.equal(rng.remaining, 0);
    t.equal(await readAll(disk, 'a.log'), expected);
  }
});

void t.test('the first dropped write may be torn: a prefix, then garbage or nothing', async (t) => {
  const cases: Array<{ draws: number[]; expected: string }> = [
    { draws: [0, 0.1, 5, 0], expected: 'AAAABBBBB' }, // 5 bytes landed, no garbage
    { draws: [0, 0.1, 3, 1, 1, 1], expected: 'AAAABBB\0\0' }, // 3 bytes, then 2 zero bytes
    { draws: [0, 0.1, 2, 1, 0, 0, 0x7f], expected: 'AAAABB\x7f' }, // 2 bytes, then 1 random byte
    { draws: [0, 0.1, 0, 0], expected: 'AAAA' }, // torn to nothing
  ];
  for (const { draws, expected } of cases) {
    const disk = new SimDisk();
    const file = await durableFile(disk, 'a.log', 'AAAA');
    await file.write(4, [text('BBBBBBBB')]);
    const rng = new ScriptedRng(draws);
    disk.crash(rng, { tornWriteProbability: 0.5 });
    t.equal(rng.remaining, 0);
    t.equal(await readAll(disk, 'a.log'), expected);
  }
});

void t.test('unsynced truncates replay in order with writes', async (t) => {
  const disk = new SimDisk();
  const file = await durableFile(disk, 'a.log', '0123456789');
  await file.truncate(4);
  await file.write(4, [text('xy')]);
  t.equal(await readAll(disk, 'a.log'), '0123xy');
  disk.crash(new ScriptedRng([1, 0.9]));
  t.equal(await readAll(disk, 'a.log'), '0123', 'the truncate kept, the write dropped');
});

void t.test('a truncate that grows shows zeros, also after a shrink', async (t) => {
  const disk = new SimDisk();
  const file = await durableFile(disk, 'a.log', 'abcdef');
  await file.truncate(2);
  await file.truncate(5);
  t.equal(await readAll(disk, 'a.log'), 'ab\0\0\0');
  await file.write(7, [text('z')]);
  t.equal(await readAll(disk, 'a.log'), 'ab\0\0\0\0\0z');
  await file.sync();
  disk.crash(new SeededRng(1));
  t.equal(await readAll(disk, 'a.log'), 'ab\0\0\0\0\0z');
});

void t.test('a new file without syncDir of its directory disappears', async (t) => {
  const disk = new SimDisk();
  await disk.mkdir('d');
  const file = await disk.open('d/new.log', { create: true });
  await file.write(0, [text('data')]);
  await file.sync();
  disk.crash(new SeededRng(1));
  t.equal(await disk.exists('d/new.log'), false);
  t.same(await disk.list('d'), []);
  t.equal(await disk.exists('d'), true, 'mkdir is durable at once');
});

void t.test('rename and remove without syncDir revert; with it they stay', async (t) => {
  const disk = new SimDisk();
  const a = await durableFile(disk, 'a.log', 'A');
  const b = await durableFile(disk, 'b.log', 'B');
  await a.close();
  await b.close();
  await disk.rename('a.log', 'c.log');
  await disk.remove('b.log');
  t.same(disk.fileNames(), ['c.log']);
  disk.crash(new SeededRng(1));
  t.same(disk.fileNames(), ['a.log', 'b.log']);
  await disk.rename('a.log', 'b.log');
  await disk.syncDir('.');
  disk.crash(new SeededRng(2));
  t.same(disk.fileNames(), ['b.log']);
  t.equal(await readAll(disk, 'b.log'), 'A');
});

void t.test('removeDir without syncDir of the parent comes back after a crash', async (t) => {
  const disk = new SimDisk();
  await disk.mkdir('p/q');
  const file = await disk.open('p/q/x.log', { create: true });
  await disk.syncDir('p/q');
  await file.close();
  await disk.removeDir('p/q');
  t.equal(await disk.exists('p/q'), false);
  await disk.removeDir('p/q');
  disk.crash(new SeededRng(1));
  t.same(disk.fileNames(), ['p/q/x.log']);
  await disk.removeDir('p/q');
  await disk.syncDir('p');
  disk.crash(new SeededRng(1));
  t.same(disk.fileNames(), []);
});

void t.test('handles from before a crash are dead; new opens see the recovered state', async (t) => {
  const disk = new SimDisk();
  const file = await durableFile(disk, 'a.log', 'A');
  disk.crash(new SeededRng(1));
  const crashed = { message: 'disk crashed' };
  await t.rejects(file.write(0, [text('x')]), crashed);
  await t.rejects(file.read(0, 1), crashed);
  await t.rejects(file.sync(), crashed);
  await t.rejects(file.truncate(0), crashed);
  await t.rejects(file.close(), crashed);
  t.throws(() => file.sizeBytes, crashed);
  t.equal(disk.crashed, false, 'crash() leaves the disk usable');
  const reopened = await disk.open('a.log', { create: false });
  t.equal((await reopened.read(0, 10)).toString(), 'A');
  await reopened.close();
});

void t.test('armCrash fires instead of the op after the next afterOps mutating ops', async (t) => {
  const disk = new SimDisk();
  const file = await durableFile(disk, 'a.log', 'A');
  disk.armCrash(2, new SeededRng(1));
  t.equal(await disk.exists('a.log'), true, 'reads do not count');
  await file.write(1, [text('B')]);
  await file.sync();
  t.equal(disk.crashed, false);
  await t.rejects(disk.rename('a.log', 'b.log'), { message: 'disk crashed' });
  t.equal(disk.crashed, true);
  await t.rejects(file.read(0, 1), { message: 'disk crashed' });
  await t.rejects(disk.list('.'), { message: 'disk crashed' }, 'the old process is dead until reboot');
  await t.rejects(disk.open('a.log', { create: false }), { message: 'disk crashed' });
  disk.reboot();
  t.equal(disk.crashed, false);
  t.same(disk.fileNames(), ['a.log'], 'the rename never happened');
  t.equal(await readAll(disk, 'a.log'), 'AB', 'the synced write survived');
});

void t.test('armCrash can cut a multi-step operation at every step', async (t) => {
  // A segment roll in nine mutating steps: create, write, sync (log and index), syncDir,
  // rename, syncDir.
  const steps = async (disk: SimDisk): Promise<void> => {
    const log = await disk.open('00.log', { create: true });
    await log.write(0, [text('batch')]);
    await log.sync();
    const index = await disk.open('00.index.tmp', { create: true });
    await index.write(0, [text('idx')]);
    await index.sync();
    await disk.syncDir('.');
    await disk.rename('00.index.tmp', '00.index');
    await disk.syncDir('.');
  };
  const stepCount = 9;
  for (let afterOps = 0; afterOps <= stepCount; afterOps++) {
    const disk = new SimDisk();
    disk.armCrash(afterOps, new SeededRng(afterOps), { tornWriteProbability: 1 });
    const outcome = await steps(disk).then(() => 'done', (error: unknown) => (error as Error).message);
    t.equal(outcome, afterOps === stepCount ? 'done' : 'disk crashed', `afterOps ${afterOps}`);
    t.equal(disk.crashed, afterOps < stepCount);
    disk.reboot();
    // Names are durable only from the first directory sync (step 7), the rename from step 9.
    const expected = afterOps < 7 ? [] : afterOps < 9 ? ['00.index.tmp', '00.log'] : ['00.index', '00.log'];
    t.same(disk.fileNames(), expected, `files after ${afterOps} ops`);
    if (afterOps >= 7) t.equal(await readAll(disk, '00.log'), 'batch');
  }
});

void t.test('failNextOp fails the next mutating op only, changing nothing', async (t) => {
  const disk = new SimDisk();
  const file = await durableFile(disk, 'a.log', 'A');
  disk.failNextOp();
  t.equal((await file.read(0, 1)).toString(), 'A', 'reads are not affected');
  await t.rejects(file.write(1, [text('B')]), { code: 'KAFKA_STORAGE_ERROR', message: /write a\.log: EIO/ });
  t.equal(file.sizeBytes, 1);
  disk.failNextOp('ENOSPC');
  await t.rejects(disk.rename('a.log', 'b.log'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOSPC/ });
  await disk.rename('a.log', 'b.log');
  t.same(disk.fileNames(), ['b.log']);
});

void t.test('reads return copies and writes copy their input', async (t) => {
  const disk = new SimDisk();
  const file = await disk.open('a.log', { create: true });
  const input = text('abc');
  await file.write(0, [input]);
  input[0] = 0x7a;
  const first = await file.read(0, 3);
  first[1] = 0x7a;
  t.equal((await file.read(0, 3)).toString(), 'abc');
  t.equal((await file.read(1, 10)).toString(), 'bc', 'short read at the end');
  t.equal((await file.read(5, 10)).length, 0);
});

void t.test('errors match the real disk', async (t) => {
  const disk = new SimDisk();
  await disk.mkdir('d');
  const file = await disk.open('f', { create: true });
  await file.close();
  await t.rejects(disk.open('missing', { create: false }), { code: 'NOT_FOUND' });
  await t.rejects(disk.open('nodir/x', { create: true }), { code: 'NOT_FOUND' });
  await t.rejects(disk.open('d', { create: true }), { code: 'KAFKA_STORAGE_ERROR' });
  await t.rejects(disk.list('missing'), { code: 'NOT_FOUND' });
  await t.rejects(disk.list('f'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.rename('missing', 'x'), { code: 'NOT_FOUND' });
  await t.rejects(disk.rename('f', 'd'), { code: 'KAFKA_STORAGE_ERROR', message: /EISDIR/ });
  await t.rejects(disk.rename('d', 'f'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.remove('d'), { code: 'KAFKA_STORAGE_ERROR', message: /EISDIR/ });
  await t.rejects(disk.mkdir('f/sub'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.mkdir('f'), { code: 'KAFKA_STORAGE_ERROR', message: /EEXIST/ });
  await t.rejects(disk.open('../x', { create: true }), { name: 'AssertionError' });
  await t.rejects(disk.open('/x', { create: true }), { name: 'AssertionError' });
  await t.rejects(disk.removeDir('.'), { name: 'AssertionError' });
  await t.rejects(disk.rename('d', 'd/e'), { name: 'AssertionError' });
  t.equal(await disk.exists('.'), true);
  t.equal(await disk.exists('nodir/x'), false);
  await t.rejects(disk.exists('f/x'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.remove('f/x'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await disk.rename('d', 'd');
  t.equal(await disk.exists('d'), true, 'renaming a directory onto itself changes nothing');
});

void t.test('a directory can be renamed, onto a missing or an empty directory', async (t) => {
  const disk = new SimDisk();
  await disk.mkdir('topic-0');
  await disk.mkdir('empty');
  const file = await disk.open('topic-0/0.log', { create: true });
  await file.close();
  await disk.rename('topic-0', 'topic-0.deleted');
  t.same(disk.fileNames(), ['topic-0.deleted/0.log']);
  await disk.rename('topic-0.deleted', 'empty');
  t.same(disk.fileNames(), ['empty/0.log']);
  await disk.mkdir('other');
  await t.rejects(disk.rename('other', 'empty'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTEMPTY/ });
});

void t.test('every operation resolves asynchronously', async (t) => {
  const disk = new SimDisk();
  const order: string[] = [];
  const pending = disk.mkdir('d').then(() => order.push('mkdir'));
  order.push('sync code');
  await pending;
  t.same(order, ['sync code', 'mkdir']);
});

/** Random workload over a few files, then a crash: returns every file's bytes after it. */
async function crashedContents(workloadSeed: number, crashSeed: number): Promise<string[]> {
  const rng = new SeededRng(workloadSeed);
  const disk = new SimDisk();
  const files: DiskFile[] = [];
  for (let index = 0; index < 4; index++) files.push(await durableFile(disk, `f${index}`, ''));
  for (let step = 0; step < 200; step++) {
    const file = files[rng.int(files.length)]!;
    const choice = rng.int(10);
    if (choice === 0) await file.sync();
    else if (choice === 1) await file.truncate(rng.int(file.sizeBytes + 1));
    else await file.write(rng.int(file.sizeBytes + 1), [new Uint8Array(1 + rng.int(20)).fill(65 + step % 26)]);
  }
  disk.crash(new SeededRng(crashSeed));
  return Promise.all(disk.fileNames().map((name) => readAll(disk, name)));
}

void t.test('the same seeds give the same bytes after a crash', async (t) => {
  t.same(await crashedContents(1, 2), await crashedContents(1, 2));
  const others = await Promise.all([3, 4, 5, 6].map((seed) => crashedContents(1, seed)));
  t.ok(others.some((contents) => JSON.stringify(contents) !== JSON.stringify(others[0])), 'crash seeds matter');
});

// The property: whatever the ops and the seed, each file after a crash equals its durable
// contents plus a prefix of its unsynced ops, where only the op after the prefix may be torn.

type ModelOp = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; sizeBytes: number };
type Command = ModelOp & { file: number } | { kind: 'sync'; file: number };

function applyModel(base: Uint8Array, op: ModelOp): Uint8Array {
  if (op.kind === 'truncate') {
    const result = new Uint8Array(op.sizeBytes);
    result.set(base.subarray(0, op.sizeBytes));
    return result;
  }
  const result = new Uint8Array(Math.max(base.length, op.position + op.bytes.length));
  result.set(base);
  result.set(op.bytes, op.position);
  return result;
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** Whether `content` is `base` with a prefix of the write's bytes, then garbage, applied. */
function isTornWrite(content: Uint8Array, base: Uint8Array, op: ModelOp & { kind: 'write' }): boolean {
  let landed = 0;
  while (landed < op.bytes.length && content[op.position + landed] === op.bytes[landed]) landed++;
  for (let garbage = 0; landed + garbage <= op.bytes.length; garbage++) {
    let expected = applyModel(base, { kind: 'write', position: op.position, bytes: op.bytes.subarray(0, landed) });
    const garbageStart = op.position + landed;
    const garbageBytes = content.subarray(garbageStart, garbageStart + garbage);
    if (garbageBytes.length === garbage) expected = applyModel(expected, { kind: 'write', position: garbageStart, bytes: garbageBytes });
    if (equalBytes(expected, content)) return true;
  }
  return false;
}

function isPrefixOutcome(content: Uint8Array, durable: Uint8Array, unsynced: readonly ModelOp[]): boolean {
  let base = durable;
  for (let kept = 0; kept <= unsynced.length; kept++) {
    if (equalBytes(base, content)) return true;
    const next = unsynced[kept];
    if (next === undefined) break;
    if (next.kind === 'write' && isTornWrite(content, base, next)) return true;
    base = applyModel(base, next);
  }
  return false;
}

const fileCount = 2;
const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), file: fc.nat(fileCount - 1), position: fc.nat(48), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(fileCount - 1), sizeBytes: fc.nat(64) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), file: fc.nat(fileCount - 1) }) },
);

async function runCommand(file: DiskFile, command: Command): Promise<void> {
  if (command.kind === 'sync') await file.sync();
  else if (command.kind === 'truncate') await file.truncate(command.sizeBytes);
  else await file.write(command.position, [command.bytes]);
}

void t.test('property: after a crash each file is durable + a prefix of its unsynced ops', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(commandArbitrary, { maxLength: 30 }), fc.integer(), fc.constantFrom(0, 0.5, 1), async (commands, seed, tornWriteProbability) => {
      const disk = new SimDisk();
      const files: DiskFile[] = [];
      const models = Array.from({ length: fileCount }, (): { durable: Uint8Array; unsynced: ModelOp[] } => ({ durable: new Uint8Array(0), unsynced: [] }));
      for (let index = 0; index < fileCount; index++) files.push(await durableFile(disk, `f${index}`, ''));
      for (const command of commands) {
        await runCommand(files[command.file]!, command);
        const model = models[command.file]!;
        if (command.kind === 'sync') {
          model.durable = model.unsynced.reduce(applyModel, model.durable);
          model.unsynced = [];
        } else {
          model.unsynced.push(command);
        }
      }
      disk.crash(new SeededRng(seed), { tornWriteProbability });
      for (let index = 0; index < fileCount; index++) {
        const content = new Uint8Array(await readAll(disk, `f${index}`).then((value) => Buffer.from(value, 'latin1')));
        const model = models[index]!;
        assert(isPrefixOutcome(content, model.durable, model.unsynced), `f${index}: ${Buffer.from(content).toString('hex')}`);
      }
    }),
    { numRuns: 300, seed: 20240601 },
  );
  t.pass('300 runs');
});
