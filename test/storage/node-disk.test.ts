import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { NodeDisk } from '../../storage/node-disk.js';
import { isDriftwoodError } from '../../storage/errors.js';

async function tempDisk(t: Test): Promise<{ disk: NodeDisk; root: string }> {
  const root = await mkdtemp(join(tmpdir(), 'driftwood-node-disk-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return { disk: new NodeDisk(root), root };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

void t.test('open without create of a missing file is NOT_FOUND; with create it makes it', async (t) => {
  const { disk, root } = await tempDisk(t);
  await t.rejects(disk.open('missing.log', { create: false }), { code: 'NOT_FOUND' });
  const file = await disk.open('new.log', { create: true });
  t.equal(file.sizeBytes, 0);
  await file.close();
  t.ok((await stat(join(root, 'new.log'))).isFile());
  await t.rejects(disk.open('no-dir/x.log', { create: true }), { code: 'NOT_FOUND' });
});

void t.test('an existing file opens with its size and keeps its bytes', async (t) => {
  const { disk, root } = await tempDisk(t);
  await writeFile(join(root, 'a.log'), 'hello');
  const file = await disk.open('a.log', { create: true });
  t.equal(file.sizeBytes, 5);
  t.equal((await file.read(0, 100)).toString(), 'hello');
  await file.close();
});

void t.test('write, writev and positional writes', async (t) => {
  const { disk, root } = await tempDisk(t);
  const file = await disk.open('a.log', { create: true });
  await file.write(0, [bytes('abc')]);
  t.equal(file.sizeBytes, 3);
  await file.write(3, [bytes('de'), bytes(''), bytes('fgh')]);
  t.equal(file.sizeBytes, 8);
  await file.write(1, [bytes('XY')]);
  t.equal(file.sizeBytes, 8, 'overwrite inside the file keeps the size');
  await file.write(10, [bytes('Z')]);
  t.equal(file.sizeBytes, 11, 'a write past the end leaves a hole');
  await file.write(11, []);
  t.equal(file.sizeBytes, 11);
  await file.sync();
  await file.close();
  t.same(await readFile(join(root, 'a.log')), Buffer.from('aXYdefgh\0\0Z'));
});

void t.test('a writev of many chunks (more than IOV_MAX) writes them all in order', async (t) => {
  const { disk } = await tempDisk(t);
  const file = await disk.open('many.log', { create: true });
  const chunks = Array.from({ length: 2000 }, (_, i) => bytes(`${i % 10}`));
  await file.write(0, chunks);
  t.equal(file.sizeBytes, 2000);
  const read = await file.read(0, 2000);
  t.equal(read.toString(), chunks.map((chunk) => Buffer.from(chunk).toString()).join(''));
  await file.close();
});

void t.test('read returns exactly the bytes there are (short at the end)', async (t) => {
  const { disk } = await tempDisk(t);
  const file = await disk.open('a.log', { create: true });
  await file.write(0, [bytes('0123456789')]);
  t.equal((await file.read(2, 3)).toString(), '234');
  const short = await file.read(8, 10);
  t.equal(short.length, 2);
  t.equal(short.toString(), '89');
  t.equal((await file.read(10, 5)).length, 0);
  t.equal((await file.read(50, 5)).length, 0);
  t.equal((await file.read(0, 0)).length, 0);
  await file.close();
});

void t.test('truncate shrinks and grows the file', async (t) => {
  const { disk, root } = await tempDisk(t);
  const file = await disk.open('a.log', { create: true });
  await file.write(0, [bytes('0123456789')]);
  await file.truncate(4);
  t.equal(file.sizeBytes, 4);
  t.equal((await file.read(0, 100)).toString(), '0123');
  await file.truncate(6);
  t.equal(file.sizeBytes, 6);
  t.same(await file.read(0, 100), Buffer.from('0123\0\0'));
  await file.sync();
  await file.close();
  t.equal((await stat(join(root, 'a.log'))).size, 6);
});

void t.test('rename replaces the target; remove is idempotent', async (t) => {
  const { disk } = await tempDisk(t);
  await disk.mkdir('topic-0');
  const a = await disk.open('topic-0/a.log', { create: true });
  await a.write(0, [bytes('new')]);
  await a.close();
  const b = await disk.open('topic-0/b.log', { create: true });
  await b.write(0, [bytes('old contents')]);
  await b.close();
  await disk.rename('topic-0/a.log', 'topic-0/b.log');
  await disk.syncDir('topic-0');
  t.equal(await disk.exists('topic-0/a.log'), false);
  const renamed = await disk.open('topic-0/b.log', { create: false });
  t.equal((await renamed.read(0, 100)).toString(), 'new');
  await renamed.close();
  await t.rejects(disk.rename('topic-0/nope', 'topic-0/x'), { code: 'NOT_FOUND' });
  await disk.remove('topic-0/b.log');
  t.equal(await disk.exists('topic-0/b.log'), false);
  await disk.remove('topic-0/b.log');
  await disk.remove('no-such-dir/b.log');
});

void t.test('mkdir, list, exists, removeDir, syncDir', async (t) => {
  const { disk } = await tempDisk(t);
  await disk.mkdir('a/b/c');
  await disk.mkdir('a/b/c');
  t.equal(await disk.exists('a/b/c'), true);
  t.equal(await disk.exists('a/b/d'), false);
  t.equal(await disk.exists('.'), true);
  const file = await disk.open('a/b/x.log', { create: true });
  await file.close();
  t.same((await disk.list('a/b')).sort(), ['c', 'x.log']);
  t.same(await disk.list('.'), ['a']);
  await t.rejects(disk.list('missing'), { code: 'NOT_FOUND' });
  await disk.syncDir('a/b');
  await disk.syncDir('.');
  await t.rejects(disk.syncDir('missing'), { code: 'NOT_FOUND' });
  await disk.removeDir('a/b');
  t.equal(await disk.exists('a/b'), false);
  t.same(await disk.list('a'), []);
  await disk.removeDir('a/b');
});

void t.test('other fs failures are KAFKA_STORAGE_ERROR with the cause kept', async (t) => {
  const { disk } = await tempDisk(t);
  await disk.mkdir('dir');
  const file = await disk.open('f', { create: true });
  await file.close();
  const error: unknown = await disk.list('f').then(() => undefined, (caught: unknown) => caught);
  t.ok(isDriftwoodError(error, 'KAFKA_STORAGE_ERROR'));
  t.match((error as Error).message, /readdir f: ENOTDIR/);
  t.match((error as Error).cause, { code: 'ENOTDIR' });
  await t.rejects(disk.open('dir', { create: false }), { code: 'KAFKA_STORAGE_ERROR' });
  await t.rejects(disk.remove('dir'), { code: 'KAFKA_STORAGE_ERROR' });
  await t.rejects(disk.mkdir('f/sub'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.exists('f/x'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await t.rejects(disk.remove('f/x'), { code: 'KAFKA_STORAGE_ERROR', message: /ENOTDIR/ });
  await disk.rename('dir', 'dir');
  t.equal(await disk.exists('dir'), true);
  await t.rejects(disk.mkdir('f'), { code: 'KAFKA_STORAGE_ERROR', message: /EEXIST/ });
});

void t.test('paths outside the root are assertion errors', async (t) => {
  const { disk } = await tempDisk(t);
  await t.rejects(disk.open('../escape', { create: true }), { name: 'AssertionError' });
  await t.rejects(disk.open('a/../../escape', { create: true }), { name: 'AssertionError' });
  await t.rejects(disk.open('/etc/passwd', { create: false }), { name: 'AssertionError' });
  await t.rejects(disk.list('..'), { name: 'AssertionError' });
  await t.rejects(disk.removeDir('.'), { name: 'AssertionError' });
  t.throws(() => new NodeDisk(''));
});

void t.test('a closed file refuses further use; bad positions are assertion errors', async (t) => {
  const { disk } = await tempDisk(t);
  const file = await disk.open('a.log', { create: true });
  await t.rejects(file.write(-1, [bytes('x')]), { name: 'AssertionError' });
  await t.rejects(file.read(1.5, 1), { name: 'AssertionError' });
  await t.rejects(file.read(0, -1), { name: 'AssertionError' });
  await file.close();
  await t.rejects(file.write(0, [bytes('x')]), { name: 'AssertionError' });
  await t.rejects(file.sync(), { name: 'AssertionError' });
});
