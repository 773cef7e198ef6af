// Plans that move replicas between brokers through reassignment: evening out replicas and
// preferred leaders across the brokers that may hold data (`driftwood cluster rebalance`),
// and emptying a broker to remove it (`driftwood brokers decommission`). Pure functions of
// the image: the controller turns a plan into reassignments, and the dry run shows it.
import { DriftwoodError } from '../../storage/errors.js';
import type { MetadataImage } from './image.js';
import { isReassigning, targetReplicas } from './reassignment.js';

/** One partition's move: its replicas now and after. */
export interface PlannedMove {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly from: readonly number[];
  readonly to: readonly number[];
}

/** Partitions one plan may move (a plan commits as one entry of reassignments). */
export const PLANNED_MOVES_MAX = 10_000;

/** Brokers that may take replicas: registered, unfenced, not decommissioned. */
export function eligibleBrokers(image: MetadataImage): number[] {
  return image.brokers().filter((b) => !b.fenced && b.decommissioned !== true).map((b) => b.brokerId).sort((a, b) => a - b);
}

interface Working {
  /** False for a partition being reassigned now: its target counts, but the plan leaves it. */
  readonly movable: boolean;
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly from: readonly number[];
  to: number[];
}

/**
 * Every partition with the replicas it will have (a moving one at its target). A partition
 * being reassigned now is movable only when `replaceMoves` (a new plan replaces its target).
 */
function working(image: MetadataImage, replaceMoves = false): Working[] {
  const all: Working[] = [];
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) {
      const target = targetReplicas(p);
      all.push({ movable: replaceMoves || !isReassigning(p), topicId: p.topicId, topic: topic.name, partition: p.partition, from: target, to: [...target] });
    }
  }
  return all;
}

function counts(partitions: readonly Working[], brokers: readonly number[], pick: (w: Working) => readonly number[]): Map<number, number> {
  const count = new Map(brokers.map((id) => [id, 0]));
  for (const w of partitions) for (const id of pick(w)) if (count.has(id)) count.set(id, (count.get(id) ?? 0) + 1);
  return count;
}

function extremes(count: ReadonlyMap<number, number>): { most: number; fewest: number; spread: number } {
  let most = -1;
  let fewest = -1;
  for (const [id, n] of count) {
    if (most < 0 || n > (count.get(most) ?? 0)) most = id;
    if (fewest < 0 || n < (count.get(fewest) ?? 0)) fewest = id;
  }
  return { most, fewest, spread: (count.get(most) ?? 0) - (count.get(fewest) ?? 0) };
}

/** The eligible broker with the fewest replicas that `w` does not hold already (lowest id on ties). */
function leastLoaded(count: Map<number, number>, w: Working): number | undefined {
  let best: number | undefined;
  for (const [id, n] of count) {
    if (w.to.includes(id)) continue;
    if (best === undefined || n < (count.get(best) ?? 0)) best = id;
  }
  return best;
}

function replace(w: Working, count: Map<number, number>, out: number, into: number): void {
  w.to[w.to.indexOf(out)] = into; // the same position: a preferred leader's place goes to its replacement
  if (count.has(out)) count.set(out, (count.get(out) ?? 0) - 1);
  count.set(into, (count.get(into) ?? 0) + 1);
}

function movesOf(all: readonly Working[]): PlannedMove[] {
  const moves = all.filter((w) => w.to.some((id, i) => w.from[i] !== id)).map(({ topicId, topic, partition, from, to }) => ({ topicId, topic, partition, from, to: [...to] }));
  if (moves.length > PLANNED_MOVES_MAX) throw new DriftwoodError('INVALID_REQUEST', `the plan moves ${moves.length} partitions, over ${PLANNED_MOVES_MAX}; rebalance topic by topic`);
  return moves;
}

/**
 * Evens replicas, then preferred leaders, across the eligible brokers. Replicas on brokers
 * that may not hold data (decommissioned, unregistered) move first; then, while one broker
 * holds two more replicas than another, one replica moves from the fullest to the emptiest
 * (one replica per step, so the plan moves as little as it can); then, while one broker is
 * preferred leader of two more partitions than another, replicas swap places within a
 * partition (no data moves). Fenced brokers keep their replicas: they may come back.
 */
export function planRebalance(image: MetadataImage): PlannedMove[] {
  const brokers = eligibleBrokers(image);
  if (brokers.length === 0) throw new DriftwoodError('INVALID_REPLICA_ASSIGNMENT', 'no broker may take replicas (all are fenced or decommissioned)');
  const all = working(image);
  const count = counts(all, brokers, (w) => w.to);
  const holdsData = (id: number): boolean => count.has(id) || image.broker(id)?.fenced === true && image.broker(id)?.decommissioned !== true;
  for (const w of all) {
    if (!w.movable) continue;
    for (const id of [...w.to]) {
      if (holdsData(id)) continue;
      const into = leastLoaded(count, w);
      if (into !== undefined) replace(w, count, id, into);
    }
  }
  for (let step = 0; step < all.length * 4; step += 1) {
    const { most, fewest, spread } = extremes(count);
    if (spread <= 1) break;
    const w = all.find((candidate) => candidate.movable && candidate.to.includes(most) && !candidate.to.includes(fewest));
    if (w === undefined) break;
    replace(w, count, most, fewest);
  }
  const preferred = counts(all, brokers, (w) => w.to.slice(0, 1));
  for (let step = 0; step < all.length * 4; step += 1) {
    const { most, fewest, spread } = extremes(preferred);
    if (spread <= 1) break;
    const w = all.find((candidate) => candidate.movable && candidate.to[0] === most && candidate.to.includes(fewest));
    if (w === undefined) break;
    const at = w.to.indexOf(fewest);
    w.to[at] = most;
    w.to[0] = fewest;
    preferred.set(most, (preferred.get(most) ?? 0) - 1);
    preferred.set(fewest, (preferred.get(fewest) ?? 0) + 1);
  }
  return movesOf(all);
}

/**
 * Moves every replica off `brokerId`, each to the eligible broker with the fewest replicas
 * that the partition does not use yet, keeping its position. Refused when some partition
 * could not keep its replication factor on the brokers left.
 */
export function planDecommission(brokerId: number, image: MetadataImage): PlannedMove[] {
  const broker = image.broker(brokerId);
  if (broker === undefined) throw new DriftwoodError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`);
  const brokers = eligibleBrokers(image).filter((id) => id !== brokerId);
  const all = working(image, true);
  const count = counts(all, brokers, (w) => w.to);
  for (const w of all) {
    if (!w.to.includes(brokerId)) continue;
    const into = leastLoaded(count, w);
    if (into === undefined) {
      throw new DriftwoodError('INVALID_REPLICATION_FACTOR', `broker ${brokerId} cannot be decommissioned: ${w.topic}-${w.partition} has ${w.to.length} replicas and only ${brokers.length} other brokers may hold them`);
    }
    replace(w, count, brokerId, into);
  }
  return movesOf(all);
}

/** Replicas a broker holds or is being given (the decommission's progress). */
export function replicasOn(brokerId: number, image: MetadataImage): number {
  let held = 0;
  for (const topic of image.topics()) {
    for (const p of image.partitions(topic.topicId) ?? []) if (p.replicas.includes(brokerId)) held += 1;
  }
  return held;
}
