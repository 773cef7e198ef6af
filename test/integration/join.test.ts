// Online scale-out, adding a broker, on real processes: three voters with a topic and
// records; a fourth node started with the voters as --peers joins as a Raft observer,
// registers, is listed alive (GET /v1/brokers, `driftwood cluster`), takes replicas of new
// topics and serves them; after kill -9 it rejoins from its data with the same flags; after
// the Raft leader is killed the new leader replicates the metadata to it. A node that claims
// a voter's id is refused and exits 2, and the voter keeps its registration.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { Client } from 'undici';
import { freePort } from '../../src/node-free-port.js';
import { BIN, localCluster, waitFor, type Started } from '../helpers/processes.js';

interface BrokerView { id: number; address: string; state: string; epoch: number }
interface PartitionView { partition: number; leader: number; replicas: number[]; isr: number[]; highWatermark: number | null }
interface ClusterView { controller: number; raft: { voters: number[]; observers: number[] }; brokers: BrokerView[] }

void t.test('a fourth broker joins a running cluster as a Raft observer', { timeout: 150_000 }, async (t) => {
  const cluster = await localCluster(t, 'join');
  const port4 = await freePort();
  const ports = new Map([[1, cluster.ports[0]!], [2, cluster.ports[1]!], [3, cluster.ports[2]!], [4, port4]]);
  const clients = new Map([...ports].map(([id, port]) => [id, new Client(`http://127.0.0.1:${port}`, { allowH2: true, useH2c: true, pipelining: 10 } as Client.Options)]));
  t.teardown(async () => { await Promise.all([...clients.values()].map((c) => c.destroy())); });
  const call = async (id: number, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const response = await clients.get(id)!.request({ method, path, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }), headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    return { status: response.statusCode, json: text.length > 0 ? JSON.parse(text) : null };
  };
  const get = async <T>(id: number, path: string): Promise<T> => (await call(id, 'GET', path)).json as T;
  const alive = async (id: number, expected: number[]): Promise<BrokerView[] | undefined> => {
    const brokers = await get<BrokerView[]>(id, '/v1/brokers');
    const ids = brokers.filter((b) => b.state === 'alive').map((b) => b.id).sort();
    return ids.length === expected.length && expected.every((e, i) => ids[i] === e) ? brokers : undefined;
  };
  const partitions = async (id: number, topic: string): Promise<PartitionView[]> => (await get<{ partitions?: PartitionView[] }>(id, `/v1/topics/${topic}`)).partitions ?? [];
  /** Produces to the partition's leader, as the description on node `id` names it. */
  const produce = async (id: number, topic: string, partition: number, values: string[]): Promise<void> => {
    await waitFor(`${values.length} records to ${topic}-${partition}`, 15_000, async () => {
      const leader = (await partitions(id, topic)).find((p) => p.partition === partition)?.leader ?? 0;
      if (leader === 0) return undefined;
      const answer = await call(leader, 'POST', `/v1/topics/${topic}/partitions/${partition}/records?acks=all`, { records: values.map((value) => ({ value })) });
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status} ${JSON.stringify(answer.json)}`);
      return true;
    });
  };
  const read = async (id: number, topic: string, partition: number): Promise<string[]> => {
    const answer = await call(id, 'GET', `/v1/topics/${topic}/partitions/${partition}/records?offset=0&format=json`);
    return answer.status === 200 ? (answer.json as { records: Array<{ value: string }> }).records.map((r) => r.value) : [];
  };
  const join4 = (): Started => {
    cluster.start(4, 'start', ['--listen', `127.0.0.1:${port4}`]);
    return cluster.nodes.get(4)!;
  };

  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  await waitFor('three alive brokers', 30_000, () => alive(1, [1, 2, 3]));
  t.equal((await call(1, 'POST', '/v1/topics', { name: 'before', partitions: 1, replicationFactor: 3, configs: {} })).status, 201);
  const early = Array.from({ length: 50 }, (_, i) => `before-${i}`);
  await produce(1, 'before', 0, early);

  // A node whose id is a voter's, started as if it were joining, is refused; voter 2 is untouched.
  const impostorPort = await freePort();
  const impostor = spawn(process.execPath, [BIN, 'start', '--id', '2', '--listen', `127.0.0.1:${impostorPort}`, '--peers', `1@127.0.0.1:${ports.get(1)!},3@127.0.0.1:${ports.get(3)!}`, '--data', join(cluster.dir, 'impostor')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { impostor.kill('SIGKILL'); });
  let impostorOutput = '';
  impostor.stdout.on('data', (chunk: Buffer) => { impostorOutput += chunk.toString(); });
  impostor.stderr.on('data', (chunk: Buffer) => { impostorOutput += chunk.toString(); });
  const impostorCode = await new Promise<number | null | 'running'>((resolve) => {
    const timer = setTimeout(() => { resolve('running'); }, 20_000);
    impostor.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
  if (impostorCode !== 2) t.comment(impostorOutput);
  t.equal(impostorCode, 2, 'a joining node with a voter id exits 2');
  t.match(impostorOutput, /INCONSISTENT_VOTER_SET/, 'naming the stable code');
  const voter2 = (await get<BrokerView[]>(1, '/v1/brokers')).find((b) => b.id === 2);
  t.equal(voter2?.address, `127.0.0.1:${ports.get(2)!}`, 'voter 2 keeps its address');
  t.equal(voter2?.state, 'alive');

  // Node 4 joins.
  const joinedAt = Date.now();
  const node4 = join4();
  const brokers = await waitFor('node 4 alive on node 1', 20_000, () => alive(1, [1, 2, 3, 4]));
  t.comment(`node 4 alive ${Date.now() - joinedAt} ms after its start`);
  t.equal(brokers.find((b) => b.id === 4)?.address, `127.0.0.1:${port4}`, 'registered with its --listen address');
  const clusterView = await get<ClusterView>(4, '/v1/cluster');
  t.same(clusterView.raft.voters, [1, 2, 3], 'the voters are unchanged');
  t.same(clusterView.raft.observers, [4], 'node 4 is an observer');
  t.equal((await get<{ role: string }>(4, '/v1/raft')).role, 'observer');
  await waitFor('node 4 to list itself alive', 5000, async () => ((await get<ClusterView>(4, '/v1/cluster')).brokers.some((b) => b.id === 4 && b.state === 'alive') ? true : undefined));
  t.same((await get<Array<{ name: string }>>(4, '/v1/topics')).map((topic) => topic.name), ['before'], 'it holds the metadata from before it joined');
  const described = await new Promise<string>((resolve, reject) => {
    const cli = spawn(process.execPath, [BIN, 'cluster', '--bootstrap', `127.0.0.1:${ports.get(2)!}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    cli.once('exit', (code) => { if (code === 0) resolve(out); else reject(new Error(`driftwood cluster exited ${code}: ${out}`)); });
  });
  t.match(described, new RegExp(`\\b4\\b.*127\\.0\\.0\\.1:${port4}.*alive`), '`driftwood cluster` lists node 4 alive');

  // New topics place replicas on it: RF 4 puts one everywhere; 4 partitions RF 1 give it one to lead.
  t.equal((await call(2, 'POST', '/v1/topics', { name: 'wide', partitions: 1, replicationFactor: 4, configs: { 'min.insync.replicas': 2 } })).status, 201);
  t.same((await partitions(2, 'wide'))[0]?.replicas.slice().sort(), [1, 2, 3, 4], 'RF 4 places a replica on node 4');
  const wide = Array.from({ length: 20 }, (_, i) => `wide-${i}`);
  await produce(2, 'wide', 0, wide);
  await waitFor('node 4 in the ISR of wide-0', 20_000, async () => ((await partitions(1, 'wide'))[0]?.isr.includes(4) === true ? true : undefined));
  t.equal((await call(1, 'POST', '/v1/topics', { name: 'spread', partitions: 4, replicationFactor: 1, configs: {} })).status, 201);
  const own = (await partitions(1, 'spread')).find((p) => p.leader === 4);
  t.equal((await partitions(1, 'spread')).length, 4);
  t.ok(own !== undefined, 'one of 4 partitions RF 1 is led by node 4');
  const ownValues = ['on-4-a', 'on-4-b', 'on-4-c'];
  await produce(1, 'spread', own!.partition, ownValues);
  t.same(await read(4, 'spread', own!.partition), ownValues, 'node 4 serves its partition');

  // kill -9 and a restart with the same flags: it rejoins and serves its partition again.
  const epochBefore = brokers.find((b) => b.id === 4)!.epoch;
  node4.child.kill('SIGKILL');
  await waitFor('node 4 fenced after kill -9', 20_000, async () => ((await get<BrokerView[]>(1, '/v1/brokers')).find((b) => b.id === 4)?.state === 'fenced' ? true : undefined));
  join4();
  const rejoined = await waitFor('node 4 alive again', 20_000, () => alive(1, [1, 2, 3, 4]));
  t.ok(rejoined.find((b) => b.id === 4)!.epoch > epochBefore, 'registered again at a new broker epoch');
  t.same(await waitFor('node 4 to serve its partition again', 20_000, async () => {
    const values = await read(4, 'spread', own!.partition);
    return values.length === ownValues.length ? values : undefined;
  }), ownValues, 'its records survived');

  // Kill the Raft leader (a voter): the new leader replicates the metadata log to node 4.
  const oldLeader = (await get<ClusterView>(1, '/v1/cluster')).controller;
  t.ok([1, 2, 3].includes(oldLeader), `the controller is voter ${oldLeader}`);
  cluster.nodes.get(oldLeader)!.child.kill('SIGKILL');
  const survivor = [1, 2, 3].find((id) => id !== oldLeader)!;
  const newLeader = await waitFor('a new controller', 20_000, async () => {
    const controller = (await get<ClusterView>(survivor, '/v1/cluster')).controller;
    return controller !== 0 && controller !== oldLeader ? controller : undefined;
  });
  await waitFor('a topic created after the failover', 20_000, async () => {
    const answer = await call(newLeader, 'POST', '/v1/topics', { name: 'after-failover', partitions: 1, replicationFactor: 2, configs: {} });
    return answer.status === 201 ? true : undefined;
  });
  await waitFor('node 4 to see the topic created after the failover', 10_000, async () => ((await get<Array<{ name: string }>>(4, '/v1/topics')).some((topic) => topic.name === 'after-failover') ? true : undefined));
  const raft4 = await get<{ role: string; leader: number }>(4, '/v1/raft');
  t.equal(raft4.leader, newLeader, 'node 4 follows the new leader');
  t.equal(raft4.role, 'observer');
  t.same(await waitFor('the records of before-0 from its leader', 20_000, async () => {
    const leader = (await partitions(survivor, 'before'))[0]?.leader ?? 0;
    const values = leader > 0 && leader !== oldLeader ? await read(leader, 'before', 0) : [];
    return values.length >= early.length ? values.slice(0, early.length) : undefined;
  }), early, 'the records from before are all there');

  // A restart at a new address: the registration carries it, and the other nodes reach node 4
  // there (the description of its partition on a voter holds offsets node 4 answered).
  const port4b = await freePort();
  cluster.nodes.get(4)!.child.kill('SIGKILL');
  await waitFor('node 4 fenced again', 20_000, async () => ((await get<BrokerView[]>(survivor, '/v1/brokers')).find((b) => b.id === 4)?.state === 'fenced' ? true : undefined));
  cluster.start(4, 'start', ['--listen', `127.0.0.1:${port4b}`]);
  await clients.get(4)!.destroy();
  clients.set(4, new Client(`http://127.0.0.1:${port4b}`, { allowH2: true, useH2c: true, pipelining: 10 } as Client.Options));
  const moved = await waitFor('node 4 alive at its new address', 20_000, async () => {
    const four = (await get<BrokerView[]>(survivor, '/v1/brokers')).find((b) => b.id === 4);
    return four?.state === 'alive' && four.address === `127.0.0.1:${port4b}` ? four : undefined;
  });
  t.equal(moved.address, `127.0.0.1:${port4b}`, 'registered again with the new address');
  await waitFor('a voter to reach node 4 at its new address', 20_000, async () => {
    const p = (await partitions(survivor, 'spread')).find((one) => one.partition === own!.partition);
    return p?.leader === 4 && p.highWatermark === ownValues.length ? true : undefined;
  });
  t.same(await read(4, 'spread', own!.partition), ownValues, 'it serves its partition from the new address');
});
