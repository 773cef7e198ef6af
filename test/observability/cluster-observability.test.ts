// Observability on a real three-node cluster: /metrics parses as Prometheus text and carries
// the issue's series with sensible values, nodes log JSON lines with nodeId (or pretty
// lines), and `driftwood cluster health` exits 0 when healthy and 1 listing the partitions
// after a node is killed with SIGKILL (when under-replication also shows in /metrics).
import { spawn } from 'node:child_process';
import t from 'tap';
import { BIN, localCluster, waitFor } from '../helpers/processes.js';
import { parsePrometheus, sampleValue, type Exposition } from './prometheus.js';

async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: string }> {
  return text(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function health(bootstrap: string, json: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'cluster', 'health', '--bootstrap', bootstrap, ...(json ? ['--json'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const ISSUE_SERIES = [
  'driftwood_produce_bytes_total', 'driftwood_produce_records_total', 'driftwood_produce_requests_total',
  'driftwood_fetch_bytes_total', 'driftwood_fetch_requests_total', 'driftwood_request_duration_seconds',
  'driftwood_under_replicated_partitions', 'driftwood_offline_partitions', 'driftwood_isr_shrinks_total',
  'driftwood_isr_expands_total', 'driftwood_raft_term', 'driftwood_raft_leader_changes_total',
  'driftwood_raft_commit_duration_seconds', 'driftwood_consumer_group_lag', 'driftwood_fsync_duration_seconds',
  'driftwood_partition_log_bytes', 'driftwood_offline_replicas', 'driftwood_log_failures_total',
];

void t.test('metrics, logs and cluster health on three nodes', { timeout: 120_000 }, async (t) => {
  const cluster = await localCluster(t, 'observability');
  // One node per log format: the default (JSON), JSON asked for, and pretty.
  cluster.start(1, 'start');
  cluster.start(2, 'start', ['--log-format', 'json', '--log-level', 'debug']);
  cluster.start(3, 'start', ['--log-format', 'pretty']);
  const url = (id: number, path: string): string => `http://127.0.0.1:${cluster.ports[id - 1] ?? 0}${path}`;
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`).join(',');

  await waitFor('three alive brokers', 60_000, async () => {
    const view = JSON.parse((await text(url(1, '/v1/cluster'))).body) as { brokers: Array<{ state: string }> };
    return view.brokers.filter((b) => b.state === 'alive').length === 3 ? true : undefined;
  });
  const created = await postJson(url(1, '/v1/topics'), { name: 'watched', partitions: 3, replicationFactor: 3 });
  t.equal(created.status, 201, created.body);
  const records = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `value-${i}` }));
  await waitFor('a produce to every partition', 30_000, async () => ((await postJson(url(1, '/v1/topics/watched/records?acks=all'), { records })).status === 200 ? true : undefined));
  const producedRecords = async (): Promise<number> => {
    let sum = 0;
    for (const id of [1, 2, 3]) sum += sampleValue(parsePrometheus((await text(url(id, '/metrics'))).body), 'driftwood_produce_records_total') ?? 0;
    return sum;
  };
  // A retried produce may have written some partitions twice: the logs say how many records there are.
  const described = JSON.parse((await text(url(1, '/v1/topics/watched'))).body) as { partitions: Array<{ highWatermark: number }> };
  const written = described.partitions.reduce((sum, p) => sum + p.highWatermark, 0);
  t.ok(written >= 20);
  t.equal(await producedRecords(), written, 'every record written counted once, on its leader');
  // A group commits offset 0 of partition 0, so its lag is the partition's high watermark.
  // Commits go to the group's coordinator, which any node names.
  await waitFor('a committed offset', 30_000, async () => {
    const found = await text(url(1, '/v1/groups/watchers/coordinator'));
    if (found.status !== 200) return undefined;
    const { coordinatorId } = JSON.parse(found.body) as { coordinatorId: number };
    const commit = await postJson(url(coordinatorId, '/v1/groups/watchers/offsets'), { offsets: [{ topic: 'watched', partition: 0, offset: 0 }] });
    return commit.status === 200 ? true : undefined;
  });
  const topic = JSON.parse((await text(url(1, '/v1/topics/watched'))).body) as { partitions: Array<{ partition: number; leader: number; highWatermark: number }> };
  for (const p of topic.partitions) {
    const read = await text(url(p.leader, `/v1/topics/watched/partitions/${p.partition}/records?offset=0&maxWaitMs=0`));
    // The body is record bytes when it works: only an error's (JSON) body makes a readable message.
    t.equal(read.status, 200, read.status === 200 ? `partition ${p.partition} read from its leader` : read.body);
  }

  const scrapes = new Map<number, Exposition>();
  for (const id of [1, 2, 3]) {
    const scraped = await text(url(id, '/metrics'));
    t.equal(scraped.status, 200);
    const exposition = parsePrometheus(scraped.body);
    scrapes.set(id, exposition);
    for (const name of ISSUE_SERIES) t.ok(exposition.types.has(name), `node ${id} exposes ${name}`);
    t.ok((sampleValue(exposition, 'driftwood_raft_term') ?? 0) >= 1, `node ${id}: raft term >= 1`);
    t.ok((sampleValue(exposition, 'driftwood_raft_leader_changes_total') ?? 0) >= 1, `node ${id} learned of a leader`);
    t.equal(sampleValue(exposition, 'driftwood_under_replicated_partitions'), 0, `node ${id}: nothing under-replicated while healthy`);
    const logSizes = exposition.samples.filter((s) => s.name === 'driftwood_partition_log_bytes');
    t.equal(sampleValue(exposition, 'driftwood_partitions'), logSizes.length, `node ${id}: a log size per hosted replica`);
    const watchedBytes = exposition.samples.filter((s) => s.name === 'driftwood_partition_log_bytes' && s.labels.topic === 'watched');
    t.equal(watchedBytes.length, 3, `node ${id} hosts the topic's three replicas`);
    t.ok(watchedBytes.some((s) => s.value > 0), `node ${id}: replicated bytes on disk`);
    t.ok((sampleValue(exposition, 'driftwood_fsync_duration_seconds_count') ?? 0) > 0, `node ${id}: fsyncs timed`);
  }
  const total = (name: string, labels: Record<string, string> = {}): number => [...scrapes.values()].reduce((sum, e) => sum + (sampleValue(e, name, labels) ?? 0), 0);
  t.ok(total('driftwood_produce_bytes_total') > 0, 'produced bytes counted on the leaders');
  // The coordinator's writes to its internal topic count too, as in Kafka.
  t.ok(total('driftwood_produce_records_total') > written, 'the offset commit is a produced record too');
  t.equal(total('driftwood_fetch_requests_total'), 3, 'one consumer fetch per partition');
  t.ok(total('driftwood_fetch_bytes_total') > 0, 'fetched bytes counted');
  t.equal(total('driftwood_controller_active'), 1, 'one active controller');
  t.equal(total('driftwood_offline_partitions'), 0, 'no offline partitions');
  t.ok(total('driftwood_raft_commit_duration_seconds_count') > 0, 'metadata commits timed on the quorum leader');
  const lagged = topic.partitions.find((p) => p.partition === 0)?.highWatermark ?? -1;
  t.equal(total('driftwood_consumer_group_lag', { group: 'watchers', topic: 'watched', partition: '0' }), lagged, 'the group lag is the high watermark minus the committed 0');
  const routes = new Set((scrapes.get(1)?.samples ?? []).filter((s) => s.name === 'driftwood_request_duration_seconds_count').map((s) => s.labels.route));
  t.ok(routes.has('/v1/topics/:topic/records'), 'request durations are labelled by route pattern');
  t.notOk([...routes].some((route) => route?.includes('watched') === true), 'never by the raw URL');

  const healthy = await health(bootstrap, false);
  t.equal(healthy.code, 0, `a healthy cluster: ${healthy.stdout}${healthy.stderr}`);
  t.match(healthy.stdout, /status:\s+healthy/);

  // Logs: JSON lines with nodeId on nodes 1 and 2 (debug lines for requests on 2), pretty on 3.
  const jsonLines = (id: number): Array<Record<string, unknown>> => (cluster.nodes.get(id)?.output.join('') ?? '').split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const id of [1, 2]) {
    const lines = jsonLines(id);
    t.ok(lines.some((line) => line.msg === 'node started'), `node ${id} logs its start as JSON`);
    t.ok(lines.every((line) => line.nodeId === id), `node ${id}: every JSON line carries nodeId ${id}`);
    t.ok(lines.some((line) => line.msg === 'metadata quorum leader changed'), `node ${id} logs the Raft leader`);
  }
  t.ok(jsonLines(2).some((line) => line.msg === 'request' && line.route === '/metrics'), 'debug level logs requests by route');
  t.notOk(jsonLines(1).some((line) => line.msg === 'request'), 'info level does not log requests');
  const pretty = (cluster.nodes.get(3)?.output.join('') ?? '').split('\n').filter((line) => line.length > 0);
  t.equal(jsonLines(3).length, 0, 'the pretty node writes no JSON lines');
  t.ok(pretty.some((line) => /^\d\d:\d\d:\d\d\.\d{3} INFO {2}node 3: node started /.test(line)), 'the pretty node writes one human line per event');

  // kill -9 of the node leading nothing in particular: node 3.
  const victim = 3;
  cluster.nodes.get(victim)?.child.kill('SIGKILL');
  const survivors = [1, 2];
  await waitFor('under-replication on the survivors', 20_000, async () => {
    let sum = 0;
    for (const id of survivors) sum += sampleValue(parsePrometheus((await text(url(id, '/metrics'))).body), 'driftwood_under_replicated_partitions') ?? 0;
    return sum >= 3 ? sum : undefined;
  });
  const shrinks = survivors.reduce(async (sum, id) => (await sum) + (sampleValue(parsePrometheus((await text(url(id, '/metrics'))).body), 'driftwood_isr_shrinks_total') ?? 0), Promise.resolve(0));
  t.ok(await shrinks >= 1, 'ISR shrinks counted on the survivors');
  const sick = await health(cluster.ports.slice(0, 2).map((port) => `127.0.0.1:${port}`).join(','), true);
  t.equal(sick.code, 1, `unhealthy after the kill: ${sick.stderr}`);
  const report = JSON.parse(sick.stdout) as { healthy: boolean; brokers: { fenced: number[] }; unhealthy: Array<{ topic: string; partition: number; outOfSync: number[] }> };
  t.equal(report.healthy, false);
  t.same(report.brokers.fenced, [victim], 'the killed node is fenced');
  t.same(report.unhealthy.filter((p) => p.topic === 'watched').map((p) => p.partition).sort(), [0, 1, 2], 'every partition of the topic is listed');
  t.ok(report.unhealthy.every((p) => p.outOfSync.includes(victim)), 'each missing the killed node');
  const sickText = await health(`127.0.0.1:${cluster.ports[0] ?? 0}`, false);
  t.equal(sickText.code, 1);
  t.match(sickText.stdout, /NOT healthy[\s\S]*watched\s+0\s+\d\s+[\d,]+\s+[\d,]+\s+3\s+under-replicated/);
});
