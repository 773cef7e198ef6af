// Producer id blocks (KIP-730): the controller hands each broker a block of 1000 ids through
// the metadata log, so ids are unique across brokers, controller changes and snapshots.
import t from 'tap';
import type { Entry } from '../../raft/index.js';
import { VirtualClock } from '../../sim/clock.js';
import { SeededRng } from '../../sim/rng.js';
import { PRODUCER_ID_BLOCK_SIZE } from '../../src/controller/commands.js';
import { Controller, defaultControllerConfig } from '../../src/controller/controller.js';
import { MetadataImage } from '../../src/controller/image.js';
import { decodeRecords } from '../../src/controller/records.js';

/** One node's controller over a log shared by every node: each commit is applied by every image. */
class SharedLog {
  readonly entries: Entry[] = [];
  readonly images = new Set<MetadataImage>();

  propose(data: Uint8Array): Promise<number> {
    const entry: Entry = { index: this.entries.length + 1, term: 1, type: 'normal', data };
    this.entries.push(entry);
    for (const image of this.images) image.apply(entry);
    return Promise.resolve(entry.index);
  }

  node(image = new MetadataImage()): { image: MetadataImage; controller: Controller } {
    for (const entry of this.entries) if (entry.index > image.lastAppliedIndex) image.apply(entry);
    this.images.add(image);
    const controller = new Controller(defaultControllerConfig, { clock: new VirtualClock(0), rng: new SeededRng(3), image, propose: (data) => this.propose(data) });
    return { image, controller };
  }
}

async function register(controller: Controller, id: number): Promise<number> {
  return (await controller.registerBroker({ brokerId: id, address: `127.0.0.1:${9090 + id}`, incarnationId: `inc-${id}` })).brokerEpoch;
}

void t.test('blocks follow each other, are in the log before they are answered, and need a current broker epoch', async (t) => {
  const log = new SharedLog();
  const { image, controller } = log.node();
  controller.activate();
  const epoch1 = await register(controller, 1);
  const epoch2 = await register(controller, 2);
  const first = await controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch1 });
  t.same(first, { firstProducerId: 0, count: PRODUCER_ID_BLOCK_SIZE });
  t.equal(image.nextProducerId, PRODUCER_ID_BLOCK_SIZE, 'applied when answered');
  const last = log.entries.at(-1);
  t.same(last === undefined ? [] : decodeRecords(last.data), [{ type: 'ProducerIds', brokerId: 1, brokerEpoch: epoch1, nextProducerId: 1000 }]);
  const [a, b] = await Promise.all([controller.allocateProducerIds({ brokerId: 2, brokerEpoch: epoch2 }), controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch1 })]);
  t.same([a.firstProducerId, b.firstProducerId], [1000, 2000], 'concurrent requests get consecutive blocks');
  await t.rejects(controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch1 + 100 }), { code: 'STALE_BROKER_EPOCH' });
  await t.rejects(controller.allocateProducerIds({ brokerId: 9, brokerEpoch: 1 }), { code: 'BROKER_ID_NOT_REGISTERED' });
  t.equal(image.nextProducerId, 3000, 'refusals take no ids');
});

void t.test('a new controller continues after every block the old one handed out', async (t) => {
  const log = new SharedLog();
  const old = log.node();
  const standby = log.node();
  old.controller.activate();
  const epoch = await register(old.controller, 1);
  const handed = [];
  for (let i = 0; i < 3; i += 1) handed.push(await old.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch }));
  old.controller.deactivate();
  await t.rejects(old.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch }), { code: 'NOT_CONTROLLER' });
  standby.controller.activate();
  const next = await standby.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch });
  const ids = [...handed, next].map((block) => block.firstProducerId);
  t.same(ids, [0, 1000, 2000, 3000], 'no block repeats');
  t.equal(old.image.nextProducerId, standby.image.nextProducerId, 'every node applied the same blocks');
});

void t.test('the snapshot keeps nextProducerId; a controller restored from it continues', async (t) => {
  const log = new SharedLog();
  const { image, controller } = log.node();
  controller.activate();
  const epoch = await register(controller, 4);
  await controller.allocateProducerIds({ brokerId: 4, brokerEpoch: epoch });
  await controller.allocateProducerIds({ brokerId: 4, brokerEpoch: epoch });
  const snapshot = image.snapshot();
  t.match(new TextDecoder().decode(snapshot), /"nextProducerId":2000/);
  const restored = new MetadataImage();
  restored.restore(snapshot);
  t.equal(restored.nextProducerId, 2000);
  t.same(restored.snapshot(), snapshot, 'byte-identical');
  controller.deactivate();
  log.images.delete(image);
  const successor = log.node(restored);
  successor.controller.activate();
  t.same(await successor.controller.allocateProducerIds({ brokerId: 4, brokerEpoch: epoch }), { firstProducerId: 2000, count: PRODUCER_ID_BLOCK_SIZE });
  const empty = new MetadataImage();
  t.notMatch(new TextDecoder().decode(empty.snapshot()), /ProducerIds/, 'no block, no record');
});

void t.test('a block record that goes back breaks an assertion on apply', (t) => {
  const image = new MetadataImage();
  const encode = (next: number): Uint8Array => new TextEncoder().encode(JSON.stringify([{ v: 1, type: 'ProducerIds', brokerId: 1, brokerEpoch: 1, nextProducerId: next }]));
  image.apply({ index: 1, term: 1, type: 'normal', data: encode(1000) });
  t.throws(() => { image.apply({ index: 2, term: 1, type: 'normal', data: encode(1000) }); }, /go back/);
  t.throws(() => { image.apply({ index: 3, term: 1, type: 'normal', data: encode(0) }); }, /bad nextProducerId/);
  t.end();
});
