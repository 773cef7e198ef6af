// A KafkaJS consumer group across a coordinator failover (issue 11): two members are stable
// and have committed everything; the broker coordinating their group is killed with -9.
// The new coordinator replays __consumer_offsets, the members find it (KafkaJS keeps calling
// the dead coordinator until its retries run out, then restarts the consumer and joins
// again), and the group goes on from the commits made at the old coordinator: the records
// written after the kill are all read, none committed before it is read again, and the new
// coordinator ends with every partition committed at its end.
import t from 'tap';
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from 'kafkajs';
import { kafkaCluster, sendNumbered } from '../helpers/kafka.js';
import { h2Json, waitFor } from '../helpers/processes.js';

const TOPIC = 'ledger';
const GROUP = 'auditors';
const PARTITIONS = 4;

void t.test('KafkaJS group: the coordinator is killed -9; the group goes on from its commits at the new one', { timeout: 180_000 }, async (t) => {
  const { cluster, kafkaPorts } = await kafkaCluster(t, 'kafkajs-group-failover');
  const https = cluster.ports.map((port) => `http://127.0.0.1:${port}`);
  t.equal((await h2Json(`${https[0] ?? ''}/v1/topics`, 'POST', { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } })).status, 201);
  await waitFor('every partition led', 20_000, async () => {
    const topic = (await h2Json(`${https[0] ?? ''}/v1/topics/${TOPIC}`)).json as { partitions: Array<{ leader: number }> };
    return topic.partitions.every((p) => p.leader > 0) ? true : undefined;
  });

  const clientLog: string[] = [];
  const kafka = new Kafka({ clientId: 'failover-test', brokers: kafkaPorts.map((port) => `127.0.0.1:${port}`), logLevel: logLevel.INFO, logCreator: () => ({ namespace, log }) => { clientLog.push(`${namespace} ${log.message} ${JSON.stringify(log).slice(0, 300)}`); }, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const send = (from: number, count: number): Promise<void> => sendNumbered(producer, TOPIC, from, count);
  await send(0, 300);

  const seen: Array<{ partition: number; offset: number; value: string }> = [];
  const consumers: Consumer[] = [];
  t.teardown(async () => { await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined))); });
  for (let i = 0; i < 2; i += 1) {
    const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 15_000, heartbeatInterval: 500, rebalanceTimeout: 20_000, retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommitInterval: 200,
      eachMessage: ({ partition, message }: EachMessagePayload) => {
        seen.push({ partition, offset: Number(message.offset), value: message.value?.toString() ?? '' });
        return Promise.resolve();
      },
    });
  }
  const coordinatorOf = async (url: string): Promise<{ coordinatorId: number; coordinatorAddress: string }> => (await h2Json(`${url}/v1/groups/${GROUP}/coordinator`)).json as { coordinatorId: number; coordinatorAddress: string };
  const committedTotal = async (url: string): Promise<number> => {
    const { coordinatorAddress } = await coordinatorOf(url);
    const answer = (await h2Json(`http://${coordinatorAddress}/v1/groups/${GROUP}/offsets?topic=${TOPIC}`)).json as { offsets?: Array<{ offset: number }> };
    return (answer.offsets ?? []).reduce((n, o) => n + o.offset, 0);
  };
  await waitFor('every record read and committed by a stable group of two', 60_000, async () => (new Set(seen.map((s) => s.value)).size === 300 && await committedTotal(https[0] ?? '') === 300 ? true : undefined));
  // Members settle: the joins of the first generations are done.
  await waitFor('a stable group of two', 20_000, async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([GROUP]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === 2 ? true : undefined;
    } finally {
      await admin.disconnect();
    }
  });
  const readBefore = seen.length;

  const { coordinatorId } = await coordinatorOf(https[0] ?? '');
  t.comment(`killing broker ${coordinatorId}, the group's coordinator`);
  cluster.nodes.get(coordinatorId)?.child.kill('SIGKILL');
  const survivor = https.find((_, i) => i + 1 !== coordinatorId) ?? '';
  const moved = await waitFor('another broker coordinates the group', 30_000, async () => {
    const found = await coordinatorOf(survivor).catch(() => undefined);
    return found !== undefined && found.coordinatorId !== coordinatorId ? found : undefined;
  });
  t.comment(`broker ${moved.coordinatorId} coordinates now`);

  await send(300, 200);
  const view = (await h2Json(`${survivor}/v1/topics/${TOPIC}`)).json as { partitions: Array<{ partition: number; leader: number; isr: number[] }> };
  t.comment(`after the kill: ${JSON.stringify(view.partitions.map((p) => [p.partition, p.leader, p.isr]))}`);
  await waitFor('the records written after the kill read', 60_000, () => Promise.resolve(new Set(seen.map((s) => s.value)).size === 500 ? true : undefined)).catch((error: unknown) => {
    const byPartition = [0, 1, 2, 3].map((p) => seen.filter((s) => s.partition === p).length);
    t.comment(`read ${new Set(seen.map((s) => s.value)).size} of 500 (per partition ${byPartition.join(',')}); the client's log:\n${clientLog.filter((l) => !l.includes('ECONNREFUSED')).slice(-40).join('\n')}`);
    throw error;
  });
  await waitFor('the new coordinator holds commits at the end', 30_000, async () => (await committedTotal(survivor) === 500 ? true : undefined));
  const after = seen.slice(readBefore);
  t.same(after.filter((s) => Number(s.value.slice(1)) < 300), [], 'no record committed before the kill was read again');
  t.equal(new Set(after.map((s) => s.value)).size, 200, 'every record written after the kill read (at least once: a record read but not yet committed when the coordinator went may be read again, as in Kafka)');
});
