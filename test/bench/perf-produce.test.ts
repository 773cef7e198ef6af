// `driftwood bench produce` against a one-node local cluster it starts itself, and its usage errors.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { latencyOrdered, onlyJson, runDriftwood, type Latency } from './helpers.js';

void t.test('2,000 records through 2 producers on a local node: the JSON shape, every record acknowledged, ordered percentiles, nothing left behind', { timeout: 45_000 }, async (t) => {
  // A temporary directory of its own: other benchmark tests run alongside and make theirs.
  const tmp = await mkdtemp(join(os.tmpdir(), 'perf-produce-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  const run = await runDriftwood(['bench', 'produce', '--nodes', '1', '--topic', 'perf', '--records', '2000', '--record-size', '100', '--acks', '1', '--producers', '2', '--linger-ms', '1', '--json'], 40_000, undefined, { ...process.env, TMPDIR: tmp });
  t.equal(run.code, 0, run.stderr);
  const result = onlyJson(run.stdout);
  t.same(Object.keys(result).sort(), ['errors', 'latencyMs', 'mbPerSec', 'records', 'recordsPerSec']);
  t.equal(result.records, 2000);
  t.equal(result.errors, 0);
  t.ok(typeof result.recordsPerSec === 'number' && result.recordsPerSec > 0);
  t.ok(typeof result.mbPerSec === 'number' && result.mbPerSec > 0);
  const latency = result.latencyMs as Latency;
  t.same(Object.keys(latency).sort(), ['max', 'p50', 'p95', 'p99', 'p999']);
  t.ok(latencyOrdered(latency), JSON.stringify(latency));
  t.ok(latency.max > 0);
  t.same(await readdir(tmp), [], 'the temporary cluster directory is removed');
});

void t.test('a paced run takes about records / rate seconds; the summary without --json', { timeout: 45_000 }, async (t) => {
  const run = await runDriftwood(['bench', 'produce', '--nodes', '1', '--topic', 'paced', '--records', '1000', '--record-size', '10', '--throughput', '500'], 40_000);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /^1000 records sent, [0-9.]+ records\/sec \([0-9.]+ MB\/sec\), 0 errors\nlatency p50 [0-9.]+ ms, p95 [0-9.]+ ms, p99 [0-9.]+ ms, p99\.9 [0-9.]+ ms, max [0-9.]+ ms\n$/);
  const rate = Number(/([0-9.]+) records\/sec/.exec(run.stdout)?.[1]);
  t.ok(rate <= 600, `paced to 500 records/s, measured ${rate}`);
});

void t.test('usage errors: one line, exit code 2, nothing started', { timeout: 30_000 }, async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--records', '10', '--record-size', '10'], /--topic T is required/],
    [['--topic', 't', '--record-size', '10'], /--records is required/],
    [['--topic', 't', '--records', '10'], /--record-size is required/],
    [['--topic', 't', '--records', '0', '--record-size', '10'], /--records must be an integer in \[1, /],
    [['--topic', 't', '--records', '10', '--record-size', '10', '--acks', '2'], /--acks must be 0, 1 or all/],
    [['--topic', 't', '--records', '10', '--record-size', '10', '--throughput', '0'], /--throughput must be an integer/],
    [['--topic', 't', '--records', '10', '--record-size', '10', '--bootstrap', '127.0.0.1:1', '--nodes', '1'], /--nodes starts a local cluster/],
    [['--topic', 't', '--records', '10', '--record-size', '10', '--nodes', '1', '--replication-factor', '3'], /--replication-factor 3 is more than --nodes 1/],
    [['--topic', 't', '--records', '10', '--record-size', '10', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const run = await runDriftwood(['bench', 'produce', ...args], 10_000);
    t.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
    t.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    t.equal(run.stdout, '');
  }
});
