// Consumer groups on three real nodes, from the member side: members share a topic's
// partitions; a revoked partition is committed by its owner before the new owner starts
// there (auto-commit's interval is long here, so only the revocation commit can do it); a
// member that leaves hands its partitions back at once; manual commits in a group; a member
// whose process stalls past its session drops its partitions and joins again; the group
// survives kill -9 of its coordinator; and the admin calls for groups.
import t from 'tap';
import { Consumer, type ConsumerOptions, type TopicPartition } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import type { DriftwoodError } from '../../storage/errors.js';
import { h2Json, waitFor } from '../helpers/processes.js';
import { clientCluster, createServedTopic, sleep } from './helpers.js';

const TOPIC = 'work';
const PARTITIONS = 6;

/** A group member polling in the background, counting each (partition, offset) it gets. */
class Member {
  readonly consumer: Consumer;
  readonly seen = new Map<string, number>();
  readonly lost: TopicPartition[][] = [];
  readonly errors: DriftwoodError[] = [];
  private running: Promise<void>;
  private stopped = false;

  constructor(options: ConsumerOptions, private readonly counts: Map<string, number>) {
    this.consumer = new Consumer({ ...options, onPartitionsLost: (partitions) => { this.lost.push(partitions); }, onError: (error) => { this.errors.push(error); } });
    this.consumer.subscribe([TOPIC]);
    this.running = this.loop();
  }

  get partitions(): number[] {
    return this.consumer.assignment().map((tp) => tp.partition).sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.consumer.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      for (const record of await this.consumer.poll(100)) {
        const key = `${record.partition}@${record.offset}`;
        this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      }
    }
  }
}

void t.test('consumer groups on three nodes', { timeout: 120_000 }, async (t) => {
  const { cluster, bootstrap, admin } = await clientCluster(t, 'client-group', 3);
  await createServedTopic(admin, TOPIC, PARTITIONS, 3);
  const producer = new Producer({ bootstrap, lingerMs: 5 });
  t.teardown(() => producer.close());
  let produced = 0;
  const produce = async (count: number): Promise<void> => {
    await Promise.all(Array.from({ length: count }, (_, i) => producer.send({ topic: TOPIC, partition: (produced + i) % PARTITIONS, value: `r${produced + i}` })));
    produced += count;
  };
  const members: Member[] = [];
  t.teardown(async () => { await Promise.all(members.map((m) => m.close().catch(() => undefined))); });
  const member = (options: Partial<ConsumerOptions>, counts: Map<string, number>): Member => {
    const made = new Member({ bootstrap, fetchMaxWaitMs: 200, ...options }, counts);
    members.push(made);
    return made;
  };
  const consumedAll = (counts: Map<string, number>, what: string, timeoutMs = 20_000): Promise<true> => waitFor(what, timeoutMs, () => Promise.resolve(counts.size >= produced ? true : undefined));

  await t.test('members share the partitions; a revoked partition goes on where its owner committed it', async (t) => {
    const counts = new Map<string, number>();
    const options = { groupId: 'shared', autoCommitIntervalMs: 600_000, sessionTimeoutMs: 6000 };
    await produce(300);
    const a = member(options, counts);
    await waitFor('member a to hold every partition', 15_000, () => Promise.resolve(a.partitions.length === PARTITIONS ? true : undefined));
    await consumedAll(counts, 'member a to read the first 300 records');
    const b = member(options, counts);
    await waitFor('the partitions split between a and b', 15_000, () => Promise.resolve(a.partitions.length === 3 && b.partitions.length === 3 ? true : undefined));
    t.same([...a.partitions, ...b.partitions].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5], `a holds ${a.partitions.join(',')}, b holds ${b.partitions.join(',')}`);
    const committed = await b.consumer.committed(b.partitions.map((partition) => ({ topic: TOPIC, partition })));
    t.same(committed.map((c) => c.offset), b.partitions.map(() => 50), 'a committed each partition it gave up at its position');
    await produce(300);
    await consumedAll(counts, 'both members to read the next 300 records');
    await sleep(300);
    t.equal(counts.size, produced, `${produced} records read`);
    t.same([...counts.values()].filter((n) => n > 1), [], 'none twice');
    t.ok([...b.seen.keys()].every((key) => Number(key.split('@')[1]) >= 50), 'b started where a left off');

    const description = await waitFor('a stable group', 10_000, async () => {
      const d = await admin.describeGroup('shared');
      return d.state === 'stable' ? d : undefined;
    });
    t.equal(description.members.length, 2);
    t.same(description.members.flatMap((m) => m.assignment.flatMap((x) => x.partitions)).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5], 'the group says the same');
    t.ok((await admin.listGroups()).some((g) => g.group === 'shared' && g.members === 2), 'listed');
    await t.rejects(admin.resetGroupOffsets('shared', { topic: TOPIC, to: 'earliest' }), { code: 'NON_EMPTY_GROUP' }, 'no reset while it has members');

    const leftAt = Date.now();
    await b.close();
    members.splice(members.indexOf(b), 1);
    await waitFor('a to get every partition back', 5000, () => Promise.resolve(a.partitions.length === PARTITIONS ? true : undefined));
    t.ok(Date.now() - leftAt < 5000, `a member that leaves hands its partitions back at once (${Date.now() - leftAt} ms, the session is 6 s)`);
    await a.close();
    members.splice(members.indexOf(a), 1);
    t.same(await committedOf('shared'), Array(PARTITIONS).fill(100), 'both committed their positions on close');

    const dry = await admin.resetGroupOffsets('shared', { topic: TOPIC, to: 'earliest', dryRun: true });
    t.same(dry.offsets.map((o) => o.offset), Array(PARTITIONS).fill(0));
    t.same(await committedOf('shared'), Array(PARTITIONS).fill(100), 'a dry run changes nothing');
    await admin.resetGroupOffsets('shared', { topic: TOPIC, partitions: [0, 1], to: 'offset', value: 10 });
    t.same(await committedOf('shared'), [10, 10, 100, 100, 100, 100]);
    await admin.deleteGroup('shared');
    await t.rejects(admin.describeGroup('shared'), { code: 'GROUP_ID_NOT_FOUND' });
  });

  await t.test('manual commits in a group', async (t) => {
    const consumer = new Consumer({ bootstrap, groupId: 'manual', autoCommit: false, fetchMaxWaitMs: 200 });
    t.teardown(() => consumer.close());
    consumer.subscribe([TOPIC]);
    let read = 0;
    const deadline = Date.now() + 20_000;
    while (read < produced && Date.now() < deadline) read += (await consumer.poll(200)).length;
    t.equal(read, produced);
    t.ok(consumer.groupMetadata().memberId !== null, `member ${consumer.groupMetadata().memberId ?? ''} epoch ${consumer.groupMetadata().memberEpoch}`);
    await consumer.commit();
    t.same((await consumer.committed()).map((c) => c.offset), Array(PARTITIONS).fill(100));
    const lag = await admin.describeGroup('manual');
    t.same(lag.offsets.map((o) => o.lag), Array(PARTITIONS).fill(0), 'no lag left');
    await t.rejects(consumer.commit([{ topic: TOPIC, partition: 0, offset: 3 }]), { code: 'COMMIT_OFFSET_REGRESSION' });
    await consumer.close();
    t.same(await committedOf('manual'), Array(PARTITIONS).fill(100), 'without auto-commit, close does not commit anything new');
  });

  await t.test('a member stalled past its session drops its partitions and joins again', async (t) => {
    const counts = new Map<string, number>();
    const m = member({ groupId: 'stalled', sessionTimeoutMs: 2000, autoCommitIntervalMs: 100 }, counts);
    await waitFor('the member to hold every partition', 15_000, () => Promise.resolve(m.partitions.length === PARTITIONS ? true : undefined));
    await consumedAll(counts, 'the member to read what is there');
    const before = m.consumer.groupMetadata().memberId;
    // The whole process stalls (a long GC pause, say): no heartbeat for longer than the session.
    const until = Date.now() + 3000;
    while (Date.now() < until) { /* stall */ }
    await waitFor('the member to join again', 15_000, () => Promise.resolve(m.lost.length > 0 && m.partitions.length === PARTITIONS ? true : undefined));
    t.same(m.lost[0]?.map((tp) => tp.partition).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5], 'every partition was dropped');
    t.not(m.consumer.groupMetadata().memberId, before, 'as a new member');
    await produce(60);
    await consumedAll(counts, 'the member to go on reading');
    t.pass(`${counts.size} records read`);
  });

  await t.test('a member its coordinator no longer knows drops its partitions and joins again', async (t) => {
    const m = member({ groupId: 'removed', sessionTimeoutMs: 30_000 }, new Map());
    await waitFor('the member to hold every partition', 15_000, () => Promise.resolve(m.partitions.length === PARTITIONS ? true : undefined));
    const { memberId, memberEpoch } = m.consumer.groupMetadata();
    const { coordinatorAddress } = (await h2Json(`http://${bootstrap[0]!}/v1/groups/removed/coordinator`)).json as { coordinatorAddress: string };
    // Someone else leaves in its name: the coordinator forgets the member, the member does not know yet.
    const left = await h2Json(`http://${coordinatorAddress}/v1/groups/removed/heartbeat`, 'POST', { memberId, memberEpoch: -1 });
    t.equal(left.status, 200, `member ${memberId ?? ''} (epoch ${memberEpoch}) removed behind its back`);
    await waitFor('the member to join again', 10_000, () => Promise.resolve(m.lost.length > 0 && m.partitions.length === PARTITIONS ? true : undefined));
    t.ok(m.errors.some((e) => e.code === 'UNKNOWN_MEMBER_ID'), 'its next heartbeat was answered UNKNOWN_MEMBER_ID');
    t.not(m.consumer.groupMetadata().memberId, memberId, 'it joined as a new member, long before its 30 s session would have run out');
  });

  await t.test('subscribing to other topics moves the assignment; a join the group refuses is raised by poll()', async (t) => {
    await createServedTopic(admin, 'other', 2, 3);
    const consumer = new Consumer({ bootstrap, groupId: 'resubscribe', fetchMaxWaitMs: 200 });
    t.teardown(() => consumer.close());
    const assigned = (): string => consumer.assignment().map((tp) => `${tp.topic}-${tp.partition}`).sort().join(',');
    consumer.subscribe([TOPIC]);
    await waitFor(`${TOPIC}'s partitions`, 15_000, () => Promise.resolve(consumer.assignment().length === PARTITIONS ? true : undefined));
    consumer.subscribe(['other']);
    await waitFor('the partitions of the new subscription only', 15_000, () => Promise.resolve(assigned() === 'other-0,other-1' ? true : undefined));
    t.pass(`assigned ${assigned()}`);

    const refused = new Consumer({ bootstrap, groupId: 'refused' });
    t.teardown(() => refused.close());
    refused.subscribe(['x'.repeat(300)]);
    const raised = await waitFor('poll() to raise the refusal', 15_000, async () => {
      try {
        await refused.poll(100);
        return undefined;
      } catch (error) {
        return error;
      }
    });
    t.match(raised, { code: 'INVALID_REQUEST' }, 'a topic name the broker refuses');
    await t.rejects(refused.poll(0), { code: 'INVALID_REQUEST' }, 'and again on the next poll');
  });

  await t.test('the group goes on after kill -9 of its coordinator', async (t) => {
    const counts = new Map<string, number>();
    const m = member({ groupId: 'survivor', sessionTimeoutMs: 6000, autoCommitIntervalMs: 100 }, counts);
    await waitFor('the member to hold every partition', 15_000, () => Promise.resolve(m.partitions.length === PARTITIONS ? true : undefined));
    await consumedAll(counts, 'the member to read what is there');
    const coordinator = (await h2Json(`http://${bootstrap[0]!}/v1/groups/survivor/coordinator`)).json as { coordinatorId: number };
    cluster.nodes.get(coordinator.coordinatorId)?.child.kill('SIGKILL');
    await produce(60);
    await consumedAll(counts, 'the member to read records produced after the kill', 30_000);
    const moved = await waitFor('a new coordinator', 10_000, async () => {
      const alive = bootstrap.find((_, i) => i + 1 !== coordinator.coordinatorId)!;
      const answer = (await h2Json(`http://${alive}/v1/groups/survivor/coordinator`)).json as { coordinatorId?: number };
      return answer.coordinatorId !== undefined && answer.coordinatorId !== coordinator.coordinatorId ? answer.coordinatorId : undefined;
    });
    t.pass(`coordinator ${coordinator.coordinatorId} killed, ${moved} took over, ${counts.size} records read`);
    await waitFor('commits at the new coordinator', 10_000, async () => ((await m.consumer.committed()).every((c) => (c.offset ?? 0) > 100) ? true : undefined));
  });

  async function committedOf(group: string): Promise<Array<number | null>> {
    const probe = new Consumer({ bootstrap, groupId: group });
    try {
      return (await probe.committed(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })))).map((c) => c.offset);
    } finally {
      await probe.close();
    }
  }
});
