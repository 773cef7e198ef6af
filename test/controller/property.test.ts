// Property: any sequence of controller commands, turned into records and applied through the
// log, keeps the image's invariants, never lowers an epoch, and snapshots round-trip.
import fc from 'fast-check';
import t from 'tap';
import {
  alterPartition,
  createTopic,
  deleteTopic,
  electPreferredLeaders,
  fenceBroker,
  registerBroker,
  unfenceBroker,
  unregisterBroker,
} from '../../src/controller/commands.js';
import { MetadataImage, type PartitionState } from '../../src/controller/image.js';
import type { MetadataRecord } from '../../src/controller/records.js';
import { isDriftwoodError } from '../../storage/errors.js';
import { bytesText, replay, TestLog } from './helpers.js';

const BROKERS = 5;
const NAMES = ['a', 'b', 'c.d', 'c_d', 'e'];

type Op =
  | { kind: 'register'; broker: number; restart: boolean }
  | { kind: 'fence' | 'unfence' | 'unregister'; broker: number }
  | { kind: 'create'; name: number; partitions: number; rf: number; start: number; unclean: boolean }
  | { kind: 'delete'; name: number }
  | { kind: 'alter'; pick: number; mask: number; stale: number }
  | { kind: 'preferred' };

const broker = fc.integer({ min: 0, max: BROKERS - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), broker, restart: fc.boolean() }),
  fc.record({ kind: fc.constantFrom('fence' as const, 'unfence' as const, 'unregister' as const), broker }),
  fc.record({ kind: fc.constant('create' as const), name: fc.nat(NAMES.length - 1), partitions: fc.integer({ min: 1, max: 4 }), rf: fc.integer({ min: 0, max: 3 }), start: fc.nat(10), unclean: fc.boolean() }),
  fc.record({ kind: fc.constant('delete' as const), name: fc.nat(NAMES.length - 1) }),
  fc.record({ kind: fc.constant('alter' as const), pick: fc.nat(), mask: fc.nat(7), stale: fc.nat(3) }),
  fc.record({ kind: fc.constant('preferred' as const) }),
);

function allPartitions(image: MetadataImage): PartitionState[] {
  return image.topics().flatMap((topic) => [...(image.partitions(topic.topicId) ?? [])]);
}

class Driver {
  readonly log = new TestLog();
  private topicIds = 0;
  private incarnations = 0;

  decide(op: Op): MetadataRecord[] {
    const image = this.log.image;
    switch (op.kind) {
      case 'register': {
        const previous = image.broker(op.broker);
        const incarnationId = previous !== undefined && !op.restart ? previous.incarnationId : `i${++this.incarnations}`;
        return registerBroker({ brokerId: op.broker, address: `b${op.broker}`, incarnationId }, image).records;
      }
      case 'fence': return fenceBroker(op.broker, image);
      case 'unfence': return unfenceBroker(op.broker, image.broker(op.broker)?.brokerEpoch ?? 0, image);
      case 'unregister': return unregisterBroker(op.broker, image);
      case 'create': {
        const configs = { 'unclean.leader.election.enable': op.unclean };
        const request = { name: NAMES[op.name]!, partitions: op.partitions, replicationFactor: op.rf, configs };
        return createTopic(request, image, image.unfencedBrokerIds(), op.start, `T${++this.topicIds}`);
      }
      case 'delete': return deleteTopic(NAMES[op.name]!, image);
      case 'alter': return this.alter(op);
      case 'preferred': return electPreferredLeaders(image);
    }
  }

  private alter(op: { pick: number; mask: number; stale: number }): MetadataRecord[] {
    const image = this.log.image;
    const partitions = allPartitions(image);
    const p = partitions[op.pick % Math.max(1, partitions.length)];
    if (p === undefined) return [];
    const requester = p.leader === -1 ? (p.replicas[0] ?? 0) : p.leader;
    const newIsr = p.replicas.filter((id, i) => id === requester || (op.mask & (1 << i)) !== 0);
    const brokerEpoch = (image.broker(requester)?.brokerEpoch ?? 0) - (op.stale === 1 ? 1 : 0);
    const leaderEpoch = p.leaderEpoch + (op.stale === 2 ? 1 : 0);
    const partitionEpoch = p.partitionEpoch - (op.stale === 3 ? 1 : 0);
    const request = { brokerId: requester, brokerEpoch, topicId: p.topicId, partition: p.partition, leaderEpoch, partitionEpoch, newIsr };
    return alterPartition(request, image).records;
  }

  /** Decides and commits; expected refusals are skipped. Returns false on a refusal. */
  step(op: Op, changes: Map<string, number>): boolean {
    let records: MetadataRecord[];
    try {
      records = this.decide(op);
    } catch (error) {
      if (isDriftwoodError(error)) return false;
      throw error;
    }
    this.log.commit(records);
    for (const record of records) changes.set(record.type, (changes.get(record.type) ?? 0) + 1);
    return true;
  }
}

function epochsOf(image: MetadataImage): Map<string, [number, number]> {
  return new Map(allPartitions(image).map((p) => [`${p.topicId}-${p.partition}`, [p.leaderEpoch, p.partitionEpoch]]));
}

void t.test('random command sequences keep the invariants and round-trip snapshots', (t) => {
  let accepted = 0;
  let refused = 0;
  const changes = new Map<string, number>();
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'large' }), (ops) => {
      const driver = new Driver();
      const image = driver.log.image;
      driver.log.addBrokers([0, 1, 2]);
      for (const op of ops) {
        const before = epochsOf(image);
        const brokerEpochs = new Map(image.brokers().map((b) => [b.brokerId, b.brokerEpoch]));
        if (driver.step(op, changes)) accepted++;
        else refused++;
        image.checkInvariants();
        for (const [key, [leaderEpoch, partitionEpoch]] of epochsOf(image)) {
          const old = before.get(key);
          if (old === undefined) continue;
          if (leaderEpoch < old[0] || partitionEpoch < old[1]) throw new Error(`epoch of ${key} went back`);
        }
        for (const b of image.brokers()) {
          if (b.brokerEpoch < (brokerEpochs.get(b.brokerId) ?? 0)) throw new Error(`broker ${b.brokerId} epoch went back`);
        }
      }
      const snapshot = image.snapshot();
      const restored = new MetadataImage();
      restored.restore(snapshot);
      if (bytesText(restored.snapshot()) !== bytesText(snapshot)) throw new Error('restore changed the snapshot');
      if (bytesText(replay(driver.log.entries).snapshot()) !== bytesText(snapshot)) throw new Error('replay differs');
    }),
    { numRuns: 300, seed: 20261122 },
  );
  t.ok(accepted > 1000, `${accepted} commands accepted`);
  t.ok(refused > 100, `${refused} commands refused`);
  for (const type of ['RegisterBroker', 'BrokerFence', 'BrokerUnfence', 'UnregisterBroker', 'Topic', 'Partition', 'PartitionChange', 'RemoveTopic']) {
    t.ok((changes.get(type) ?? 0) > 50, `${type} records applied: ${changes.get(type) ?? 0}`);
  }
  t.end();
});
