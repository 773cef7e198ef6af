// The simulator's replica moves: drawn targets are valid replica lists, and the move-step
// checker tells a safe reassignment step from the two unsafe ones.
import t from 'tap';
import type { PartitionState } from '../../src/controller/image.js';
import { drawMove, moveStepViolation } from '../../sim/replica-moves.js';
import { SeededRng } from '../../sim/rng.js';

function partition(replicas: number[], isr: number[], adding?: number[], removing?: number[]): PartitionState {
  return { topicId: 'T', partition: 0, replicas, isr, leader: isr[0] ?? -1, leaderEpoch: 0, partitionEpoch: 0, ...(adding === undefined ? {} : { addingReplicas: adding }), ...(removing === undefined ? {} : { removingReplicas: removing }) };
}

void t.test('drawn moves are lists of distinct eligible brokers, no smaller than asked', (t) => {
  const rng = new SeededRng(7);
  const shapes = new Set<string>();
  for (let i = 0; i < 500; i += 1) {
    const moving = i % 3 === 0;
    const p = moving ? partition([1, 2, 3, 4], [1, 2], [4], [3]) : partition([1, 2, 3], [1, 2, 3]);
    const move = drawMove(rng, p, [1, 2, 3, 4, 5], 2);
    if (move === null) continue;
    shapes.add(move.shape);
    if (move.replicas === null) {
      t.equal(move.shape, 'cancel');
      t.ok(moving, 'only a partition being moved is cancelled');
      continue;
    }
    if (new Set(move.replicas).size !== move.replicas.length || move.replicas.length < 2 || !move.replicas.every((id) => id >= 1 && id <= 5)) t.fail(`bad target ${JSON.stringify(move)}`);
  }
  t.same([...shapes].sort(), ['cancel', 'grow', 'reorder', 'replace', 'shrink']);
  t.equal(drawMove(rng, partition([1, 2], [1, 2]), [1, 2], 2)?.shape ?? 'none', 'reorder', 'two brokers, two replicas: only a reorder fits');
  t.end();
});

void t.test('a reassignment step may drop ISR members it removes, never add a new replica to the ISR or go below min.insync', (t) => {
  t.equal(moveStepViolation({ replicas: [1, 2, 3], isr: [1, 2, 3] }, partition([1, 2, 3, 4], [1, 2, 3], [4]), 2), null, 'a start');
  t.equal(moveStepViolation({ replicas: [1, 2, 3, 4], isr: [1, 2, 3] }, partition([1, 2, 4], [1, 2, 4]), 2), null, 'a completion by the leader taking in the added replica');
  t.match(moveStepViolation({ replicas: [1, 2, 3], isr: [1, 2, 3] }, partition([1, 2, 4], [1, 2, 4]), 2), /put 4 into the ISR/, 'a completion as the move starts');
  t.match(moveStepViolation({ replicas: [3, 1, 2], isr: [3, 2] }, partition([3, 1], [3]), 2), /below min.insync.replicas 2/, 'a cancellation dropping an in-sync added replica');
  t.equal(moveStepViolation({ replicas: [3, 1, 2], isr: [3] }, partition([3, 1], [3]), 2), null, 'already below: not made worse by the step');
  t.equal(moveStepViolation({ replicas: [1, 2], isr: [1, 2] }, partition([1], [1]), 2), null, 'a shrink to one replica asks for one');
  t.end();
});
