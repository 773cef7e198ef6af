// The active controller over a one-node "quorum" that applies each proposal at once: the
// request queue, broker sessions, fencing and unfencing, and its refusals.
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { SeededRng } from '../../sim/rng.js';
import { Controller, defaultControllerConfig } from '../../src/controller/controller.js';
import { MetadataImage } from '../../src/controller/image.js';
import { DriftwoodError } from '../../storage/errors.js';

function setup(config: Partial<typeof defaultControllerConfig> = {}): { controller: Controller; image: MetadataImage; clock: VirtualClock; proposals: () => number } {
  const image = new MetadataImage();
  const clock = new VirtualClock(0);
  let index = 0;
  const propose = (data: Uint8Array): Promise<number> => {
    index += 1;
    image.apply({ index, term: 1, type: 'normal', data });
    return Promise.resolve(index);
  };
  const controller = new Controller({ ...defaultControllerConfig, ...config }, { clock, rng: new SeededRng(5), image, propose });
  controller.activate();
  return { controller, image, clock, proposals: () => index };
}

async function registerAll(controller: Controller, image: MetadataImage, ids: number[]): Promise<Map<number, number>> {
  const epochs = new Map<number, number>();
  for (const id of ids) {
    const { brokerEpoch } = await controller.registerBroker({ brokerId: id, address: `127.0.0.1:${9090 + id}`, incarnationId: `inc-${id}` });
    epochs.set(id, brokerEpoch);
  }
  for (const id of ids) await controller.heartbeat({ brokerId: id, brokerEpoch: epochs.get(id) ?? 0, appliedIndex: image.lastAppliedIndex });
  return epochs;
}

void t.test('brokers register fenced, heartbeats unfence them, topics spread leaders', async (t) => {
  const { controller, image } = setup();
  const epochs = await registerAll(controller, image, [1, 2, 3]);
  t.match(image.clusterId, /^[A-Za-z0-9_-]{22}$/, 'the first controller names the cluster');
  t.same(image.unfencedBrokerIds(), [1, 2, 3]);
  t.same(new Set(epochs.values()).size, 3, 'every broker has its own epoch');
  const topic = await controller.createTopic({ name: 'orders', partitions: 6, replicationFactor: 3, configs: {} });
  const partitions = image.partitions(topic.topicId) ?? [];
  t.equal(partitions.length, 6);
  const leaders = new Map<number, number>();
  for (const p of partitions) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
  t.same([...leaders.values()], [2, 2, 2], 'each broker leads two of six partitions');
  await t.rejects(controller.createTopic({ name: 'orders', partitions: 1, replicationFactor: 1, configs: {} }), { code: 'TOPIC_ALREADY_EXISTS' });
  await t.rejects(controller.createTopic({ name: 'big', partitions: 1, replicationFactor: 4, configs: {} }), { code: 'INVALID_REPLICATION_FACTOR' });
  await controller.deleteTopic('orders');
  t.equal(image.topic('orders'), undefined);
  await t.rejects(controller.deleteTopic('orders'), { code: 'UNKNOWN_TOPIC_OR_PARTITION' });
});

void t.test('a silent broker is fenced after the session timeout; leadership moves within the ISR; it comes back', async (t) => {
  const { controller, image, clock } = setup({ catchUpLagEntriesMax: 0 });
  const epochs = await registerAll(controller, image, [1, 2, 3]);
  const topic = await controller.createTopic({ name: 'events', partitions: 6, replicationFactor: 3, configs: {} });
  for (let elapsed = 0; elapsed <= 1500; elapsed += 100) {
    clock.advance(100);
    for (const id of [2, 3]) await controller.heartbeat({ brokerId: id, brokerEpoch: epochs.get(id) ?? 0, appliedIndex: image.lastAppliedIndex });
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.ok(image.broker(1)?.fenced, 'broker 1 is fenced');
  for (const p of image.partitions(topic.topicId) ?? []) {
    t.not(p.leader, 1, `partition ${p.partition} is not led by the fenced broker`);
    t.notOk(p.isr.includes(1), `partition ${p.partition}: the fenced broker left the ISR`);
    t.ok(p.isr.includes(p.leader), 'the new leader comes from the ISR');
  }
  t.notOk(image.broker(2)?.fenced);
  const behind = await controller.heartbeat({ brokerId: 1, brokerEpoch: epochs.get(1) ?? 0, appliedIndex: image.lastAppliedIndex - 1 });
  t.same(behind, { fenced: true }, 'a broker behind the metadata log stays fenced');
  const back = await controller.heartbeat({ brokerId: 1, brokerEpoch: epochs.get(1) ?? 0, appliedIndex: image.lastAppliedIndex });
  t.same(back, { fenced: false });
  t.notOk(image.broker(1)?.fenced);
});

void t.test('refusals: unknown broker, stale epoch, not the controller', async (t) => {
  const { controller, image } = setup();
  const epochs = await registerAll(controller, image, [1]);
  await t.rejects(controller.heartbeat({ brokerId: 9, brokerEpoch: 1, appliedIndex: 0 }), { code: 'BROKER_ID_NOT_REGISTERED' });
  await t.rejects(controller.heartbeat({ brokerId: 1, brokerEpoch: (epochs.get(1) ?? 0) + 7, appliedIndex: 0 }), { code: 'STALE_BROKER_EPOCH' });
  controller.deactivate();
  t.notOk(controller.isActive);
  await t.rejects(controller.createTopic({ name: 'x', partitions: 1, replicationFactor: 1, configs: {} }), { code: 'NOT_CONTROLLER' });
  await t.rejects(controller.heartbeat({ brokerId: 1, brokerEpoch: 1, appliedIndex: 0 }), { code: 'NOT_CONTROLLER' });
});

void t.test('controlled shutdown fences the broker at once and moves its leaderships', async (t) => {
  const { controller, image } = setup();
  const epochs = await registerAll(controller, image, [1, 2, 3]);
  const topic = await controller.createTopic({ name: 'c', partitions: 3, replicationFactor: 3, configs: {} });
  t.ok((image.partitions(topic.topicId) ?? []).some((p) => p.leader === 2));
  await t.rejects(controller.controlledShutdown({ brokerId: 2, brokerEpoch: 999 }), { code: 'STALE_BROKER_EPOCH' });
  await t.rejects(controller.controlledShutdown({ brokerId: 8, brokerEpoch: 1 }), { code: 'BROKER_ID_NOT_REGISTERED' });
  await controller.controlledShutdown({ brokerId: 2, brokerEpoch: epochs.get(2) ?? 0 });
  t.ok(image.broker(2)?.fenced);
  t.ok((image.partitions(topic.topicId) ?? []).every((p) => p.leader !== 2 && !p.isr.includes(2)));
});

void t.test('leadership returns to preferred replicas once they are back in the ISR', async (t) => {
  const { controller, image, clock } = setup({ catchUpLagEntriesMax: 1000 });
  const epochs = await registerAll(controller, image, [1, 2, 3]);
  const topic = await controller.createTopic({ name: 'balanced', partitions: 6, replicationFactor: 3, configs: {} });
  const preferredBy1 = (image.partitions(topic.topicId) ?? []).filter((p) => p.replicas[0] === 1).map((p) => p.partition);
  t.equal(preferredBy1.length, 2);
  await controller.controlledShutdown({ brokerId: 1, brokerEpoch: epochs.get(1) ?? 0 });
  t.ok((image.partitions(topic.topicId) ?? []).every((p) => p.leader !== 1));
  await controller.heartbeat({ brokerId: 1, brokerEpoch: epochs.get(1) ?? 0, appliedIndex: image.lastAppliedIndex });
  t.notOk(image.broker(1)?.fenced, 'back and unfenced');
  // Broker 1 caught up: each leader adds it back to its ISR (what replication will do).
  for (const p of image.partitions(topic.topicId) ?? []) {
    const [answer] = await controller.alterPartitions({ brokerId: p.leader, brokerEpoch: image.broker(p.leader)?.brokerEpoch ?? 0, partitions: [{ topicId: p.topicId, partition: p.partition, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [...p.isr, 1] }] });
    t.ok(answer !== undefined && 'state' in answer && answer.state.isr.includes(1), `partition ${p.partition}: broker 1 back in the ISR`);
  }
  t.ok((image.partitions(topic.topicId) ?? []).every((p) => p.leader !== 1), 'not yet: the rebalance waits for its check');
  for (let waited = 0; waited <= defaultControllerConfig.leaderRebalanceCheckMs; waited += 250) {
    clock.advance(250);
    for (const id of [1, 2, 3]) await controller.heartbeat({ brokerId: id, brokerEpoch: epochs.get(id) ?? 0, appliedIndex: image.lastAppliedIndex });
    await new Promise((resolve) => setImmediate(resolve));
  }
  const ledBy1 = (image.partitions(topic.topicId) ?? []).filter((p) => p.leader === 1).map((p) => p.partition);
  t.same(ledBy1, preferredBy1, 'broker 1 leads its preferred partitions again');
});

void t.test('a new controller gives brokers activationGraceMs, not a full session, to heartbeat', async (t) => {
  const { controller, image, clock } = setup({ sessionTimeoutMs: 1000, activationGraceMs: 300 });
  const epochs = await registerAll(controller, image, [1, 2]);
  controller.deactivate();
  clock.advance(5000);
  controller.activate(); // a new term: nothing heard from anyone yet
  for (let elapsed = 0; elapsed < 600; elapsed += 100) {
    clock.advance(100);
    await controller.heartbeat({ brokerId: 2, brokerEpoch: epochs.get(2) ?? 0, appliedIndex: image.lastAppliedIndex });
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.ok(image.broker(1)?.fenced, 'the silent broker is fenced about 300 ms after activation');
  t.notOk(image.broker(2)?.fenced, 'the broker that heartbeated is not');
});

void t.test('after a proposal times out, no decision is made until the image has applied it (sim seed 1574 of 5 nodes)', async (t) => {
  const image = new MetadataImage();
  const clock = new VirtualClock(0);
  let index = 0;
  let held: { index: number; data: Uint8Array } | null = null;
  let holdNext = false;
  const propose = (data: Uint8Array): Promise<number> => {
    index += 1;
    if (holdNext) {
      // The entry is in the log but does not commit in time (the leader was paused, say).
      holdNext = false;
      held = { index, data };
      return Promise.reject(new DriftwoodError('REQUEST_TIMED_OUT', 'did not commit in time; it may still commit', { index }));
    }
    image.apply({ index, term: 1, type: 'normal', data });
    return Promise.resolve(index);
  };
  const controller = new Controller(defaultControllerConfig, { clock, rng: new SeededRng(5), image, propose });
  controller.activate();
  await registerAll(controller, image, [1, 2, 3]);
  await controller.createTopic({ name: 'doomed', partitions: 2, replicationFactor: 3, configs: {} });
  holdNext = true;
  await t.rejects(controller.deleteTopic('doomed'), { code: 'REQUEST_TIMED_OUT' });
  // Deciding now would read an image that still has the topic, and could propose changes to
  // partitions the pending removal deletes: applying them would break every node.
  let decided = false;
  const next = controller.createTopic({ name: 'doomed', partitions: 1, replicationFactor: 1, configs: {} }).then(
    () => { decided = true; },
    (error: unknown) => { decided = true; throw error; },
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(decided, 'the next decision waits for the entry whose fate is open');
  const pending = held as { index: number; data: Uint8Array } | null;
  if (pending === null) throw new Error('nothing held');
  image.apply({ index: pending.index, term: 1, type: 'normal', data: pending.data });
  await next;
  t.ok(image.topic('doomed'), 'decided on the image with the removal applied: the name was free again');
});

void t.test('a controller waiting on an unresolved entry that loses leadership refuses the queued requests', async (t) => {
  const image = new MetadataImage();
  let index = 0;
  let holdNext = false;
  const propose = (data: Uint8Array): Promise<number> => {
    index += 1;
    if (holdNext) {
      holdNext = false;
      return Promise.reject(new DriftwoodError('REQUEST_TIMED_OUT', 'late', { index }));
    }
    image.apply({ index, term: 1, type: 'normal', data });
    return Promise.resolve(index);
  };
  const controller = new Controller(defaultControllerConfig, { clock: new VirtualClock(0), rng: new SeededRng(5), image, propose });
  controller.activate();
  await registerAll(controller, image, [1]);
  holdNext = true;
  await t.rejects(controller.createTopic({ name: 'a', partitions: 1, replicationFactor: 1, configs: {} }), { code: 'REQUEST_TIMED_OUT' });
  const queued = controller.createTopic({ name: 'b', partitions: 1, replicationFactor: 1, configs: {} });
  controller.deactivate();
  await t.rejects(queued, { code: 'NOT_CONTROLLER' });
});
