// The pure parts of observability: the pretty log line, the JSON logger's fields and
// redaction, the health verdict and its text, `cluster health` usage errors, and the test
// exposition reader refusing malformed text (so the cluster test's parse can fail).
import t from 'tap';
import { assessHealth, formatHealth } from '../../src/cli/cluster-health.js';
import { run } from '../../src/cli/commands.js';
import { createNodeLogger, logPort, prettyLine } from '../../src/broker/node-logger.js';
import type { ClusterDescription, TopicDescription } from '../../src/client/admin.js';
import { parsePrometheus } from './prometheus.js';

void t.test('JSON logs carry nodeId and never a header or token', (t) => {
  const lines: string[] = [];
  const logger = createNodeLogger({ nodeId: 7, format: 'json', level: 'info', write: (line) => { lines.push(line); } });
  logPort(logger).info({ topic: 'orders', partition: 2 }, 'ISR shrank');
  logger.info({ headers: { authorization: 'Bearer s3cret' }, token: 's3cret' }, 'oops');
  logPort(logger).debug({}, 'hidden at info');
  t.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(first, { nodeId: 7, level: 30, msg: 'ISR shrank', topic: 'orders', partition: 2 });
  t.type(first.time, 'number');
  t.notMatch(lines[1]!, /s3cret/, 'headers and tokens are redacted');
  t.end();
});

void t.test('pretty logs are one human line per event', (t) => {
  const lines: string[] = [];
  const logger = createNodeLogger({ nodeId: 2, format: 'pretty', level: 'debug', write: (line) => { lines.push(line); } });
  logger.warn({ broker: 3, isr: [1, 2], note: 'two words' }, 'broker fenced');
  t.equal(lines.length, 1);
  t.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}node 2: broker fenced broker=3 isr=\[1,2\] note="two words"\n$/);
  t.throws(() => JSON.parse(lines[0]!) as unknown);
  t.equal(prettyLine('not json\n'), 'not json\n', 'a line that is not JSON passes through');
  t.end();
});

const cluster: ClusterDescription = { clusterId: 'c', controller: 1, brokers: [{ id: 1, address: 'a:1', state: 'alive' }, { id: 2, address: 'a:2', state: 'alive' }, { id: 3, address: 'a:3', state: 'fenced' }] } as unknown as ClusterDescription;

function topic(partitions: Array<{ leader: number | null; replicas: number[]; isr: number[] }>): TopicDescription {
  return { name: 'orders', id: 'x', configs: {}, partitions: partitions.map((p, partition) => ({ partition, leaderEpoch: 0, offlineReplicas: [], logStartOffset: 0, logEndOffset: 0, highWatermark: 0, ...p })) };
}

void t.test('health: healthy only with every leader and every ISR full', (t) => {
  const healthy = assessHealth(cluster, [topic([{ leader: 1, replicas: [1, 2], isr: [2, 1] }])]);
  t.equal(healthy.healthy, true);
  t.same(healthy.unhealthy, []);
  t.match(formatHealth(healthy), /status:\s+healthy/);
  const sick = assessHealth(cluster, [topic([{ leader: 1, replicas: [1, 2], isr: [1, 2] }, { leader: 1, replicas: [1, 3], isr: [1] }, { leader: null, replicas: [3], isr: [3] }])]);
  t.equal(sick.healthy, false);
  t.same(sick.unhealthy.map((p) => [p.partition, p.problem, p.outOfSync]), [[1, 'under-replicated', [3]], [2, 'leaderless', []]]);
  t.same(sick.brokers, { alive: 2, fenced: [3] });
  const text = formatHealth(sick);
  t.match(text, /NOT healthy/);
  t.match(text, /1 leaderless, 1 under-replicated/);
  t.match(text, /orders\s+1\s+1\s+1,3\s+1\s+3\s+under-replicated/);
  t.match(text, /orders\s+2\s+none\s+3\s+3\s+-\s+leaderless/);
  t.equal(assessHealth({ ...cluster, controller: 0 }, []).healthy, false, 'no controller is not healthy');
  t.end();
});

void t.test('cluster health: usage errors exit 2', async (t) => {
  for (const args of [['cluster', 'health', 'extra'], ['cluster', 'health', '--bogus'], ['cluster', 'health', '--bootstrap', 'nohostport']]) {
    let stderr = '';
    const code = await run(args, { stdout: () => undefined, stderr: (text) => { stderr += text; } });
    t.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    t.match(stderr, /cluster health --help/);
  }
  let help = '';
  t.equal(await run(['cluster', 'health', '--help'], { stdout: (text) => { help += text; }, stderr: () => undefined }), 0);
  t.match(help, /usage: driftwood cluster health/);
  t.equal(await run(['start', '--log-format', 'xml'], { stdout: () => undefined, stderr: () => undefined }), 2, 'a bad --log-format is a usage error');
});

void t.test('the exposition reader refuses malformed text', (t) => {
  const good = '# HELP a_total A.\n# TYPE a_total counter\na_total 3\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 0.5\nh_count 1\n';
  t.equal(parsePrometheus(good).samples.length, 4);
  t.throws(() => parsePrometheus('b_total 1\n'), /no declared family/);
  t.throws(() => parsePrometheus('# TYPE a gauge\na{x=1} 1\n'), /bad labels/);
  t.throws(() => parsePrometheus('# TYPE a gauge\na one\n'), /bad value/);
  t.ok(Number.isNaN(parsePrometheus('# TYPE a gauge\na Nan\n').samples[0]?.value), 'NaN in any case, as Prometheus reads it');
  t.throws(() => parsePrometheus('# TYPE h histogram\nh_bucket 1\n'), /without le/);
  t.end();
});
