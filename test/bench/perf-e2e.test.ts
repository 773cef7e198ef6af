// `driftwood bench e2e` on a one-node local cluster: every record read once, latencies ordered, and its usage errors.
import t from 'tap';
import { latencyOrdered, onlyJson, runDriftwood, type Latency } from './helpers.js';

void t.test('1,000 records/s for 2 s on a local node: about 2,000 records read end to end, none lost, ordered percentiles', { timeout: 45_000 }, async (t) => {
  const run = await runDriftwood(['bench', 'e2e', '--nodes', '1', '--topic', 'e2e', '--throughput', '1000', '--duration', '2', '--record-size', '32', '--json'], 40_000);
  t.equal(run.code, 0, run.stderr);
  const result = onlyJson(run.stdout);
  t.same(Object.keys(result).sort(), ['latencyMs', 'lost', 'records', 'recordsPerSec']);
  // The sender stops at the deadline: a run a little behind its rate sends a few records less.
  t.ok(typeof result.records === 'number' && result.records >= 1900 && result.records <= 2000, `${String(result.records)} records`);
  t.equal(result.lost, 0);
  t.ok(typeof result.recordsPerSec === 'number' && result.recordsPerSec > 0 && result.recordsPerSec <= 1100, String(result.recordsPerSec));
  const latency = result.latencyMs as Latency;
  t.same(Object.keys(latency).sort(), ['max', 'p50', 'p95', 'p99', 'p999']);
  t.ok(latencyOrdered(latency), JSON.stringify(latency));
  t.ok(latency.p50 > 0);
});

void t.test('e2e usage errors: one line, exit code 2', { timeout: 20_000 }, async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--throughput', '10', '--duration', '1'], /--topic T is required/],
    [['--topic', 't', '--duration', '1'], /--throughput is required/],
    [['--topic', 't', '--throughput', '10'], /--duration is required/],
    [['--topic', 't', '--throughput', '10', '--duration', '1', '--record-size', '8'], /--record-size must be an integer in \[16, /],
    [['--topic', 't', '--throughput', '10000000', '--duration', '86400'], /--throughput times --duration is at most/],
  ];
  for (const [args, message] of cases) {
    const run = await runDriftwood(['bench', 'e2e', ...args], 10_000);
    t.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
    t.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});
