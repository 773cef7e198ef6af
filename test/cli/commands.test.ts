import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { capture } from '../helpers/capture.js';
import { run } from '../../src/cli/commands.js';


void t.test('help and unknown commands', async (t) => {
  const help = capture();
  t.equal(await run(['help'], help.io), 0);
  t.match(help.out.join(''), /bench storage/);
  const unknown = capture();
  t.equal(await run(['frobnicate'], unknown.io), 2);
  t.match(unknown.err.join(''), /unknown command 'frobnicate'/);
  const badFlag = capture();
  t.equal(await run(['bench', 'storage', '--no-such-flag'], badFlag.io), 2);
  t.match(badFlag.err.join(''), /no-such-flag/);
  const badValue = capture();
  t.equal(await run(['bench', 'storage', '--bytes=-5'], badValue.io), 2);
  t.match(badValue.err.join(''), /--bytes must be an integer >= 1/);
  const badBench = capture();
  t.equal(await run(['bench', 'nothing'], badBench.io), 2);
  const cluster = capture();
  t.equal(await run(['cluster', 'run', '--nodes', '12'], cluster.io), 2);
  t.match(cluster.err.join(''), /--nodes must be 1 to 9/);
  const clusterPort = capture();
  t.equal(await run(['cluster', 'run', '--base-port', '65535'], clusterPort.io), 2);
});

void t.test('bench storage runs end to end on a small size and prints its figures', async (t) => {
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-bench-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = capture();
  t.equal(await run(['bench', 'storage', '--dir', join(dir, 'b'), '--bytes', '2000000', '--json'], json.io), 0, json.err.join(''));
  const result = JSON.parse(json.out.join('')) as Record<string, unknown>;
  for (const key of ['appendMBps', 'rawMBps', 'ratio', 'recordsPerSec', 'readMBps', 'fsyncPolicy', 'singleAppender']) t.ok(key in result, key);
  t.equal(result.fsyncPolicy, 'every 1000 ms');
  t.ok((result.ratio as number) > 0);
  const text = capture();
  t.equal(await run(['bench', 'storage', '--dir', join(dir, 'c'), '--bytes', '500000', '--appends-in-flight', '1'], text.io), 0);
  t.match(text.out.join(''), /appendMBps\s+\d/);
});

void t.test('quorum refuses bad flags with exit code 2 before touching anything', async (t) => {
  const peers = '1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3';
  const cases: Array<[string[], RegExp]> = [
    [['quorum', '--id', '1'], /peers list is missing/],
    [['quorum', '--id', '9', '--listen', '127.0.0.1:1', '--peers', peers, '--data', '/nonexistent/x'], /node id 9 is not in the peers list/],
    [['quorum', '--id', '1', '--listen', '127.0.0.1:1', '--peers', '1@bad', '--data', '/nonexistent/x'], /ID@HOST:PORT/],
    [['quorum', '--id', '1', '--listen', 'nope', '--peers', peers, '--data', '/nonexistent/x'], /--listen is HOST:PORT/],
    [['quorum', '--id', '1', '--listen', '127.0.0.1:1', '--peers', peers, '--data', '/nonexistent/x', '--voters', '1,7'], /voter 7 is not in the peers list/],
  ];
  // (A directory under a file: refused even for root, who may write anywhere else.)
  cases.push([['quorum', '--id', '1', '--peers', peers, '--data', `${import.meta.filename}/data`], /is not a directory/]);
  for (const [argv, message] of cases) {
    const run1 = capture();
    t.equal(await run(argv, run1.io), 2, argv.join(' '));
    t.match(run1.err.join(''), message);
  }
});
