// KafkaJS consumer groups against driftwood's Kafka listener (issue 11): two members of one
// group split a topic's partitions between them (the classic protocol: FindCoordinator,
// JoinGroup with MEMBER_ID_REQUIRED, the leader's SyncGroup, Heartbeat), read every record
// once and commit; the commits are the HTTP API's offsets too; a member that leaves and a new
// one that joins make the group rebalance, and the members go on from the commits: no record
// before them is read again and none after them is missed; an offset reset over HTTP is what
// OffsetFetch then answers.
import t from 'tap';
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from 'kafkajs';
import { kafkaCluster, sendNumbered } from '../helpers/kafka.js';
import { h2Json, waitFor } from '../helpers/processes.js';

const TOPIC = 'events';
const GROUP = 'billing';
const PARTITIONS = 4;

interface Seen { member: string; partition: number; offset: number; value: string }

void t.test('KafkaJS consumer group: members split partitions, commit, and a restarted member goes on from the commits', { timeout: 180_000 }, async (t) => {
  const { kafkaPorts, http } = await kafkaCluster(t, 'kafkajs-group');
  t.equal((await h2Json(`${http}/v1/topics`, 'POST', { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 })).status, 201);
  await waitFor('every partition led', 20_000, async () => {
    const topic = (await h2Json(`${http}/v1/topics/${TOPIC}`)).json as { partitions: Array<{ leader: number }> };
    return topic.partitions.every((p) => p.leader > 0) ? true : undefined;
  });

  const kafka = new Kafka({ clientId: 'group-test', brokers: kafkaPorts.map((port) => `127.0.0.1:${port}`), logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const send = (from: number, count: number): Promise<void> => sendNumbered(producer, TOPIC, from, count);
  await send(0, 400);

  const seen: Seen[] = [];
  const assigned = new Map<string, number[]>();
  const consumers = new Set<Consumer>();
  t.teardown(async () => { await Promise.all([...consumers].map((c) => c.disconnect().catch(() => undefined))); });
  const startMember = async (name: string): Promise<Consumer> => {
    const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 20_000 });
    consumers.add(consumer);
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      assigned.set(name, [...(event.payload.memberAssignment[TOPIC] ?? [])].sort((a, b) => a - b));
    });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommitInterval: 200,
      eachMessage: ({ partition, message }: EachMessagePayload) => {
        seen.push({ member: name, partition, offset: Number(message.offset), value: message.value?.toString() ?? '' });
        return Promise.resolve();
      },
    });
    return consumer;
  };
  const first = await startMember('a');
  await startMember('b');

  const split = await waitFor('both members assigned, every record read', 60_000, () => {
    const a = assigned.get('a') ?? [];
    const b = assigned.get('b') ?? [];
    const together = [...a, ...b].sort((x, y) => x - y);
    return Promise.resolve(a.length > 0 && b.length > 0 && together.join() === '0,1,2,3' && new Set(seen.map((s) => s.value)).size === 400 ? { a, b } : undefined);
  });
  t.comment(`assigned: a ${split.a.join(',')}, b ${split.b.join(',')}`);
  t.equal(split.a.length + split.b.length, PARTITIONS, 'every partition to exactly one member');
  for (const partition of split.a) t.notOk(seen.some((s) => s.partition === partition && s.member === 'b' && !split.b.includes(partition)), `partition ${partition} read by its member`);

  // The commits are the HTTP API's offsets too: every partition committed at its end.
  let lastAnswer: unknown = null;
  const ends = await waitFor('the group committed every partition at its end', 20_000, async () => {
    const { coordinatorAddress } = (await h2Json(`${http}/v1/groups/${GROUP}/coordinator`)).json as { coordinatorAddress: string };
    const answer = (await h2Json(`http://${coordinatorAddress}/v1/groups/${GROUP}/offsets?topic=${TOPIC}`)).json as { offsets?: Array<{ partition: number; offset: number }> };
    lastAnswer = answer;
    const offsets = answer.offsets ?? [];
    const total = offsets.reduce((n, o) => n + o.offset, 0);
    return offsets.length === PARTITIONS && total === 400 ? offsets : undefined;
  });
  t.equal(ends.length, PARTITIONS, `an offset per partition over HTTP (${JSON.stringify(lastAnswer)})`);
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const fetched = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  t.same((fetched[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]).sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0)), ends.map((o) => [o.partition, o.offset]).sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0)), 'OffsetFetch shows the same offsets');
  const described = await admin.describeGroups([GROUP]);
  t.match(described.groups[0], { groupId: GROUP, state: 'Stable', protocolType: 'consumer' }, 'DescribeGroups: stable');
  t.equal(described.groups[0]?.members.length, 2, 'two members');
  const overHttp = (await h2Json(`${http}/v1/groups/${GROUP}`)).json as { state: string; members: Array<{ assignment: Array<{ topic: string; partitions: number[] }> }>; offsets: Array<{ lag: number }> };
  t.equal(overHttp.state, 'stable', 'GET /v1/groups/{group}: the Kafka group, stable');
  t.same(overHttp.members.map((m) => m.assignment[0]?.partitions ?? []).sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0)), [split.a, split.b].sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0)), 'each member with the partitions KafkaJS was given (read from the consumer-protocol assignment)');
  t.same(overHttp.offsets.map((o) => o.lag), [0, 0, 0, 0], 'and no lag');
  const listed = await admin.listGroups();
  t.ok(listed.groups.some((g) => g.groupId === GROUP && g.protocolType === 'consumer'), 'ListGroups lists it');

  // Member a leaves; records arrive; a new member c joins: b and c share the partitions and
  // go on from the commits.
  const before = seen.length;
  await first.disconnect();
  consumers.delete(first);
  assigned.delete('a');
  await startMember('c');
  await waitFor('b and c assigned', 60_000, () => {
    const together = [...(assigned.get('b') ?? []), ...(assigned.get('c') ?? [])].sort((x, y) => x - y);
    return Promise.resolve((assigned.get('c') ?? []).length > 0 && together.join() === '0,1,2,3' ? true : undefined);
  });
  await send(400, 200);
  await waitFor('the new records read', 30_000, () => Promise.resolve(new Set(seen.map((s) => s.value)).size === 600 ? true : undefined));
  const after = seen.slice(before);
  const reread = after.filter((s) => Number(s.value.slice(1)) < 400);
  t.same(reread, [], 'no record before the commits was read again');
  const counts = new Map<string, number>();
  for (const s of seen) counts.set(s.value, (counts.get(s.value) ?? 0) + 1);
  t.same([...counts].filter(([, n]) => n > 1), [], 'every record read once');
  for (let partition = 0; partition < PARTITIONS; partition += 1) {
    const offsets = seen.filter((s) => s.partition === partition).map((s) => s.offset);
    t.same(offsets, offsets.map((_, i) => i), `partition ${partition}: read in order from 0, without gaps`);
  }

  // The other way round: offsets moved over HTTP are what Kafka clients fetch.
  await Promise.all([...consumers].map((c) => c.disconnect()));
  consumers.clear();
  const { coordinatorAddress } = (await h2Json(`${http}/v1/groups/${GROUP}/coordinator`)).json as { coordinatorAddress: string };
  const reset = await h2Json(`http://${coordinatorAddress}/v1/groups/${GROUP}/offsets/reset`, 'POST', { topic: TOPIC, partitions: [0], to: 'earliest' });
  t.equal(reset.status, 200, `the emptied group's offsets reset over HTTP (${JSON.stringify(reset.json)})`);
  const moved = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  t.equal(moved[0]?.partitions.find((p) => p.partition === 0)?.offset, '0', 'OffsetFetch shows the offset the HTTP reset wrote');
});
