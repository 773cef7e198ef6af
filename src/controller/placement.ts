// Replica placement and leader election, as Kafka does them (rack-unaware
// AdminUtils.assignReplicasToBrokers and PartitionChangeBuilder's election). Pure functions:
// the random start comes in as an argument.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';
import type { MetadataImage } from './image.js';
import { NO_LEADER } from './records.js';
import { effectiveTopicConfig } from './topic-config.js';

/** Kafka has no hard limit; ours bounds one creation batch (and the Raft entry carrying it). */
export const PARTITIONS_PER_TOPIC_MAX = 10_000;

/**
 * Kafka's round robin: partition p's first replica (the preferred leader) is broker
 * (p + start) mod n, so leaders spread evenly; followers follow at a shift that grows by
 * one after every n partitions, so the followers of one broker's partitions spread over the
 * other brokers too. `startIndex` is the random start, drawn by the caller from its Rng.
 */
export function placeReplicas(brokerIds: readonly number[], partitions: number, replicationFactor: number, startIndex: number): number[][] {
  const n = brokerIds.length;
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > PARTITIONS_PER_TOPIC_MAX) {
    throw new DriftwoodError('INVALID_PARTITIONS', `partitions must be an integer in 1..${PARTITIONS_PER_TOPIC_MAX}, got ${partitions}`);
  }
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
    throw new DriftwoodError('INVALID_REPLICATION_FACTOR', `replication factor must be a positive integer, got ${replicationFactor}`);
  }
  if (replicationFactor > n) {
    throw new DriftwoodError('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} is larger than the ${n} available brokers`);
  }
  assert(Number.isSafeInteger(startIndex) && startIndex >= 0, 'startIndex is a non-negative integer');
  assert.equal(new Set(brokerIds).size, n, 'broker ids are distinct');
  const start = startIndex % n;
  let shift = startIndex % n;
  const placement: number[][] = [];
  for (let p = 0; p < partitions; p++) {
    if (p > 0 && p % n === 0) shift += 1;
    const first = (p + start) % n;
    const indexes = [first];
    for (let j = 0; j < replicationFactor - 1; j++) indexes.push((first + 1 + ((shift + j) % (n - 1))) % n);
    const replicas = indexes.map((i) => brokerAt(brokerIds, i));
    assert.equal(new Set(replicas).size, replicationFactor);
    placement.push(replicas);
  }
  return placement;
}

function brokerAt(brokerIds: readonly number[], index: number): number {
  const id = brokerIds[index];
  assert(id !== undefined, `no broker at index ${index}`);
  return id;
}

export interface Election {
  readonly leader: number;
  readonly isr: readonly number[];
}

/**
 * The first replica (in preferred order) that is in the ISR and live. Failing that, only
 * when unclean election is allowed, the first live replica, with the ISR reset to it (data
 * the old ISR had may be lost). Otherwise no leader, and the ISR is kept as it was.
 */
export function electLeader(replicas: readonly number[], isr: readonly number[], liveBrokers: ReadonlySet<number>, uncleanAllowed: boolean): Election {
  assert(isr.length > 0, 'the ISR is never empty');
  const clean = replicas.find((id) => isr.includes(id) && liveBrokers.has(id));
  if (clean !== undefined) return { leader: clean, isr };
  if (uncleanAllowed) {
    const unclean = replicas.find((id) => liveBrokers.has(id));
    if (unclean !== undefined) return { leader: unclean, isr: [unclean] };
  }
  return { leader: NO_LEADER, isr };
}

export interface BrokerImbalance {
  /** Partitions whose preferred replica (the first) is this broker. */
  readonly preferred: number;
  /** Of those, the ones this broker does not lead now. */
  readonly notLed: number;
  /** notLed / preferred (0 when the broker is preferred for nothing): Kafka's leader.imbalance ratio. */
  readonly ratio: number;
}

/** Per broker, how many of the partitions it should lead it does not lead (for auto rebalance). */
export function preferredLeaderImbalance(image: MetadataImage): Map<number, BrokerImbalance> {
  const counts = new Map<number, { preferred: number; notLed: number }>();
  for (const broker of image.brokers()) counts.set(broker.brokerId, { preferred: 0, notLed: 0 });
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) {
      const preferred = p.replicas[0];
      assert(preferred !== undefined);
      const count = counts.get(preferred) ?? { preferred: 0, notLed: 0 };
      count.preferred += 1;
      if (p.leader !== preferred) count.notLed += 1;
      counts.set(preferred, count);
    }
  }
  const result = new Map<number, BrokerImbalance>();
  for (const [brokerId, { preferred, notLed }] of [...counts].sort((a, b) => a[0] - b[0])) {
    result.set(brokerId, { preferred, notLed, ratio: preferred === 0 ? 0 : notLed / preferred });
  }
  return result;
}

/** Whether a topic allows unclean leader election (its override or Kafka's default, false). */
export function uncleanElectionAllowed(image: MetadataImage, topicId: string): boolean {
  const topic = image.topicById(topicId);
  assert(topic !== undefined, `unknown topic ${topicId}`);
  return effectiveTopicConfig(topic.configs)['unclean.leader.election.enable'];
}
