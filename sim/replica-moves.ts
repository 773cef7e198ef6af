// The simulator's replica moves (issue 10): what the 'reassign' nemesis asks the controller
// for, and the checks a move must pass. Pure functions of a drawn number and an image's
// partition, so a seed replays them exactly and they can be tested alone.
import assert from 'node:assert/strict';
import type { PartitionState } from '../src/controller/image.js';
import { isReassigning, originalReplicas } from '../src/controller/reassignment.js';
import type { SeededRng } from './rng.js';

/** What a drawn move does to a partition's replicas. */
export type MoveShape = 'grow' | 'shrink' | 'replace' | 'reorder' | 'cancel';

export interface DrawnMove {
  readonly shape: MoveShape;
  /** The new replica list, or null to cancel the partition's reassignment. */
  readonly replicas: readonly number[] | null;
}

function shuffled(rng: SeededRng, ids: readonly number[]): number[] {
  const out = [...ids];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j] ?? 0, out[i] ?? 0];
  }
  return out;
}

/**
 * A new replica list for `p` among the `eligible` brokers, of `sizeMin` (the data topic's
 * min.insync.replicas, so acks=all can still succeed once the move is done) to all eligible
 * brokers. A partition being moved is cancelled a third of the time, else given a new target
 * (which replaces the one in flight). Null when no shape fits (too few brokers).
 */
export function drawMove(rng: SeededRng, p: PartitionState, eligible: readonly number[], sizeMin: number): DrawnMove | null {
  assert(sizeMin >= 1);
  if (isReassigning(p) && rng.float() < 1 / 3) return { shape: 'cancel', replicas: null };
  const current = originalReplicas(p).filter((id) => eligible.includes(id));
  const spare = shuffled(rng, eligible.filter((id) => !current.includes(id)));
  const shapes: MoveShape[] = [];
  if (spare.length > 0) shapes.push('grow', 'replace');
  if (current.length > sizeMin) shapes.push('shrink');
  if (current.length >= 2) shapes.push('reorder');
  const shape = shapes[rng.int(shapes.length)];
  if (shape === undefined || current.length === 0) return null;
  const replicas = shuffled(rng, current);
  switch (shape) {
    case 'grow': replicas.splice(rng.int(replicas.length + 1), 0, spare[0] ?? 0); break;
    case 'shrink': replicas.splice(rng.int(replicas.length), 1); break;
    case 'replace': replicas[rng.int(replicas.length)] = spare[0] ?? 0; break;
    default: break;
  }
  // Too few eligible brokers left (a decommission took one) for the size the topic needs.
  if (replicas.length < Math.min(sizeMin, eligible.length)) return null;
  assert(new Set(replicas).size === replicas.length);
  return { shape, replicas };
}

/** A partition's replicas and ISR before a change. */
export interface ReplicaSet {
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

/**
 * The safety of one reassignment step (a change of the replica list: start, completion,
 * cancellation), or null when it is safe. No broker enters the ISR in the step that makes it
 * a replica: it must have fetched first (the leader's AlterPartition that takes in the last
 * target replica completes the move in the same change, but that replica was listed since
 * the start). And a step never takes the ISR below min.insync.replicas (or the new replica
 * count, if smaller) when it was not.
 */
export function moveStepViolation(before: ReplicaSet, after: PartitionState, minInsync: number): string | null {
  const joined = after.isr.filter((id) => !before.isr.includes(id) && !before.replicas.includes(id));
  if (joined.length > 0) {
    return `replicas [${before.replicas.join(',')}] -> [${after.replicas.join(',')}] put ${joined.join(',')} into the ISR [${after.isr.join(',')}] (was [${before.isr.join(',')}]) without the leader`;
  }
  const floor = Math.min(minInsync, after.replicas.length);
  if (after.isr.length < floor && before.isr.length >= floor) {
    return `replicas [${before.replicas.join(',')}] -> [${after.replicas.join(',')}] took the ISR from [${before.isr.join(',')}] to [${after.isr.join(',')}], below min.insync.replicas ${minInsync}`;
  }
  return null;
}
