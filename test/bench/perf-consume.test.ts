// `driftwood bench consume` on a local cluster it fills itself, and both benchmarks against a
// running node given with --bootstrap (the topic created by produce, read by a group).
import t, { type Test } from 'tap';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';
import { onlyJson, runDriftwood } from './helpers.js';

function checkConsumeResult(t: Test, stdout: string, records: number): void {
  const result = onlyJson(stdout);
  t.same(Object.keys(result).sort(), ['mbPerSec', 'records', 'recordsPerSec', 'timeToFirstRecordMs']);
  t.equal(result.records, records);
  t.ok(typeof result.recordsPerSec === 'number' && result.recordsPerSec > 0);
  t.ok(typeof result.mbPerSec === 'number' && result.mbPerSec > 0);
  t.ok(typeof result.timeToFirstRecordMs === 'number' && result.timeToFirstRecordMs >= 0);
}

void t.test('a local node filled with 2,000 records: all of them read, with the time to the first', { timeout: 45_000 }, async (t) => {
  const run = await runDriftwood(['bench', 'consume', '--nodes', '1', '--topic', 'perf', '--records', '2000', '--record-size', '50', '--json'], 40_000);
  t.equal(run.code, 0, run.stderr);
  checkConsumeResult(t, run.stdout, 2000);
  t.match(run.stderr, /filling perf with 2000 records/);
});

void t.test('--bootstrap: produce creates the topic when given --partitions, consume reads it in a group, a missing topic is an error', { timeout: 55_000 }, async (t) => {
  const cluster = await localCluster(t, 'bench-consume', 1);
  cluster.start(1, 'start');
  const address = `127.0.0.1:${cluster.ports[0] ?? 0}`;
  await waitFor('the node to be alive', 20_000, async () => {
    const brokers = (await h2Json(`http://${address}/v1/brokers`)).json as Array<{ state: string }>;
    return brokers.length === 1 && brokers[0]?.state === 'alive' ? true : undefined;
  });
  const produce = await runDriftwood(['bench', 'produce', '--bootstrap', address, '--topic', 'given', '--partitions', '3', '--replication-factor', '1', '--records', '3000', '--record-size', '20', '--acks', 'all', '--json'], 30_000);
  t.equal(produce.code, 0, produce.stderr);
  t.equal(onlyJson(produce.stdout).records, 3000);
  const consume = await runDriftwood(['bench', 'consume', '--bootstrap', address, '--topic', 'given', '--records', '3000', '--group', 'perf-group', '--json'], 30_000);
  t.equal(consume.code, 0, consume.stderr);
  checkConsumeResult(t, consume.stdout, 3000);
  const missing = await runDriftwood(['bench', 'consume', '--bootstrap', address, '--topic', 'nothere', '--records', '10', '--json'], 20_000);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /topic nothere does not exist/);
  t.equal(missing.stdout, '');
});

void t.test('consume usage errors: one line, exit code 2', { timeout: 20_000 }, async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--records', '10'], /--topic T is required/],
    [['--topic', 't'], /--records is required/],
    [['--topic', 't', '--records', '10', '--timeout-ms', 'x'], /--timeout-ms must be an integer/],
    [['--topic', 't', '--records', '10', '--bootstrap', '127.0.0.1:1', '--record-size', '10'], /--record-size sizes the records a local cluster/],
  ];
  for (const [args, message] of cases) {
    const run = await runDriftwood(['bench', 'consume', ...args], 10_000);
    t.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
    t.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});
