// The Admin client on three real nodes, bootstrapped through a dead address first: topics
// (create, the errors of a bad create, list, describe, delete), the cluster, preferred-leader
// elections, groups that do not exist, and the package's export of the client.
import t from 'tap';
import { Admin } from '../../src/client/admin.js';
import { freePort } from '../../src/node-free-port.js';
import { clientCluster } from './helpers.js';

void t.test('the admin client on three nodes', { timeout: 60_000 }, async (t) => {
  const { bootstrap } = await clientCluster(t, 'client-admin', 3);
  const dead = `127.0.0.1:${await freePort()}`;
  const admin = new Admin({ bootstrap: [dead, ...bootstrap], requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());

  const cluster = await admin.describeCluster();
  t.match(cluster.clusterId, /^[A-Za-z0-9_-]{22}$/, 'through the dead address to a live one');
  t.ok([1, 2, 3].includes(cluster.controller), `controller ${cluster.controller}`);
  t.same(cluster.brokers.map((b) => [b.id, b.address, b.state]), [1, 2, 3].map((id) => [id, bootstrap[id - 1], 'alive']));

  const created = await admin.createTopic({ name: 'audit', partitions: 4, replicationFactor: 3, configs: { 'retention.ms': 3_600_000 } });
  t.equal(created.partitions.length, 4);
  t.same(created.configs, { 'retention.ms': 3_600_000 });
  t.ok(created.partitions.every((p) => p.replicas.length === 3 && p.leader !== null && p.replicas.includes(p.leader)), 'every partition has three replicas and a leader among them');
  await t.rejects(admin.createTopic({ name: 'audit', partitions: 1 }), { code: 'TOPIC_ALREADY_EXISTS' });
  await t.rejects(admin.createTopic({ name: 'wide', partitions: 1, replicationFactor: 5 }), { code: 'INVALID_REPLICATION_FACTOR' });
  await t.rejects(admin.createTopic({ name: 'bad/name', partitions: 1 }), { code: 'INVALID_TOPIC_EXCEPTION' });
  t.ok((await admin.listTopics()).some((topic) => topic.name === 'audit' && topic.partitions === 4), 'listed');
  const described = await admin.describeTopic('audit');
  t.same(described.partitions.map((p) => p.partition), [0, 1, 2, 3]);
  t.equal(described.id, created.id);

  const election = await admin.electPreferredLeaders();
  t.ok(Number.isInteger(election.elected) && election.elected >= 0, `preferred-leader election moved ${election.elected}`);

  await t.rejects(admin.describeGroup('nobody'), { code: 'GROUP_ID_NOT_FOUND' });
  t.ok(Array.isArray(await admin.listGroups()));
  await t.rejects(admin.deleteGroup('nobody'), { code: 'GROUP_ID_NOT_FOUND' });

  await admin.deleteTopic('audit');
  await t.rejects(admin.describeTopic('audit'), { code: 'UNKNOWN_TOPIC_OR_PARTITION' });
  await t.rejects(admin.deleteTopic('audit'), { code: 'UNKNOWN_TOPIC_OR_PARTITION' });

  await admin.close();
  await t.rejects(admin.listTopics(), { code: 'CLIENT_CLOSED' });

  const alone = new Admin({ bootstrap: [dead], requestTimeoutMs: 1000, apiTimeoutMs: 600, retryBackoffMs: 50, retryBackoffMsMax: 100 });
  const started = Date.now();
  await t.rejects(alone.listTopics(), { code: 'NETWORK_EXCEPTION' }, 'no node to reach');
  t.ok(Date.now() - started >= 500, 'after retrying for apiTimeoutMs');
  await alone.close();
});

void t.test('the package exports the client', { timeout: 10_000 }, async (t) => {
  const pkg = await import('driftwood') as Record<string, unknown>;
  for (const name of ['Producer', 'Consumer', 'Admin', 'DriftwoodError', 'isDriftwoodError', 'partitionForKey']) t.type(pkg[name], 'function', name);
});
