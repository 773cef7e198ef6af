import t from 'tap';
import { electLeader, placeReplicas, preferredLeaderImbalance, PARTITIONS_PER_TOPIC_MAX } from '../../src/controller/placement.js';
import { createTopic, fenceBroker, unfenceBroker } from '../../src/controller/commands.js';
import { throwsCode, TestLog } from './helpers.js';

function tally(placement: number[][]): { leaders: Map<number, number>; replicas: Map<number, number> } {
  const leaders = new Map<number, number>();
  const replicas = new Map<number, number>();
  for (const list of placement) {
    leaders.set(list[0]!, (leaders.get(list[0]!) ?? 0) + 1);
    for (const id of list) replicas.set(id, (replicas.get(id) ?? 0) + 1);
  }
  return { leaders, replicas };
}

void t.test('6 brokers x 60 partitions x RF 3 spread exactly, for every start', (t) => {
  const brokers = [10, 11, 12, 13, 14, 15];
  for (let start = 0; start < 12; start++) {
    const placement = placeReplicas(brokers, 60, 3, start);
    t.equal(placement.length, 60);
    t.ok(placement.every((list) => list.length === 3 && new Set(list).size === 3), 'no broker twice in one list');
    const { leaders, replicas } = tally(placement);
    t.same([...leaders.values()], [10, 10, 10, 10, 10, 10], `start ${start}: each broker leads 10`);
    t.same([...replicas.values()], [30, 30, 30, 30, 30, 30], `start ${start}: each broker holds 30`);
  }
  t.end();
});

void t.test('placement matches Kafka’s round robin with a growing shift', (t) => {
  t.same(placeReplicas([0, 1, 2, 3, 4], 10, 3, 0), [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1],
    [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2],
  ]);
  t.same(placeReplicas([7], 3, 1, 5), [[7], [7], [7]]);
  t.same(placeReplicas([1, 2, 3], 2, 3, 1), [[2, 1, 3], [3, 2, 1]]);
  t.end();
});

void t.test('bad counts are refused', (t) => {
  throwsCode(t, () => placeReplicas([1, 2], 1, 3, 0), 'INVALID_REPLICATION_FACTOR');
  throwsCode(t, () => placeReplicas([1, 2], 1, 0, 0), 'INVALID_REPLICATION_FACTOR');
  throwsCode(t, () => placeReplicas([], 1, 1, 0), 'INVALID_REPLICATION_FACTOR');
  throwsCode(t, () => placeReplicas([1, 2], 0, 1, 0), 'INVALID_PARTITIONS');
  throwsCode(t, () => placeReplicas([1, 2], PARTITIONS_PER_TOPIC_MAX + 1, 1, 0), 'INVALID_PARTITIONS');
  throwsCode(t, () => placeReplicas([1, 2], 1.5, 1, 0), 'INVALID_PARTITIONS');
  t.end();
});

void t.test('electLeader prefers replica order within the live ISR', (t) => {
  const live = new Set([2, 3]);
  t.same(electLeader([1, 2, 3], [1, 3, 2], live, false), { leader: 2, isr: [1, 3, 2] });
  t.same(electLeader([1, 2, 3], [1], live, false), { leader: -1, isr: [1] }, 'no live ISR member: no leader, ISR kept');
  t.same(electLeader([1, 2, 3], [1], live, true), { leader: 2, isr: [2] }, 'unclean: first live replica, ISR reset');
  t.same(electLeader([1, 4], [1], live, true), { leader: -1, isr: [1] }, 'unclean with no live replica');
  t.end();
});

void t.test('preferred leader imbalance per broker', (t) => {
  const log = new TestLog();
  log.addBrokers([1, 2, 3]);
  log.commit(createTopic({ name: 'a', partitions: 6, replicationFactor: 2, configs: {} }, log.image, [1, 2, 3], 0, 'ta'));
  let imbalance = preferredLeaderImbalance(log.image);
  t.same([...imbalance.values()].map((b) => b.ratio), [0, 0, 0]);
  log.commit(fenceBroker(1, log.image));
  imbalance = preferredLeaderImbalance(log.image);
  t.same(imbalance.get(1), { preferred: 2, notLed: 2, ratio: 1 });
  t.same(imbalance.get(2), { preferred: 2, notLed: 0, ratio: 0 });
  log.commit(unfenceBroker(1, log.image.broker(1)!.brokerEpoch, log.image));
  t.equal(preferredLeaderImbalance(log.image).get(1)?.ratio, 1, 'unfencing alone does not move leaders back');
  t.end();
});
