// The Raft simulator over many seeds (fast-check chooses them and prints the failing one),
// its determinism, and proof that its checkers catch each deliberate bug.
import fc from 'fast-check';
import t from 'tap';
import type { RaftBug } from '../../raft/index.js';
import { simBugs } from '../../sim/cli.js';
import { runRaftSim } from '../../sim/raft-sim.js';

const SEEDS = Number(process.env.SIM_SEEDS ?? 200);
const BUG_SEEDS_MAX = 200;

void t.test(`no invariant is violated on ${SEEDS} seeds of a 5-node quorum under faults`, async (t) => {
  let simulatedMs = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
      const result = await runRaftSim({ seed, nodes: 5, faultMs: 20_000, healMs: 10_000, bugs: new Set() });
      simulatedMs += result.simulatedMs;
      if (result.violations.length > 0) throw new Error(`seed ${seed}: ${result.violations.join('; ')} (replay: driftwood sim raft --seed ${seed})`);
    }),
    { numRuns: SEEDS },
  );
  t.comment(`${Math.round(simulatedMs / 1000)} s of virtual time`);
});

void t.test('the same seed gives the same trace hash; another seed another', async (t) => {
  const options = { nodes: 5, faultMs: 10_000, healMs: 5_000, bugs: new Set<RaftBug>() };
  const first = await runRaftSim({ seed: 7, ...options });
  const second = await runRaftSim({ seed: 7, ...options });
  const other = await runRaftSim({ seed: 8, ...options });
  t.equal(first.traceHash, second.traceHash);
  t.equal(first.events, second.events);
  t.not(first.traceHash, other.traceHash);
});

for (const bug of Object.keys(simBugs) as RaftBug[]) {
  void t.test(`the checkers catch --bug ${bug} within ${BUG_SEEDS_MAX} seeds`, async (t) => {
    for (let seed = 1; seed <= BUG_SEEDS_MAX; seed += 1) {
      const result = await runRaftSim({ seed, nodes: 5, faultMs: 20_000, healMs: 10_000, bugs: new Set([bug]) });
      if (result.violations.length > 0) {
        t.pass(`caught at seed ${seed}: ${result.violations[0] ?? ''}`);
        return;
      }
    }
    t.fail(`not caught in ${BUG_SEEDS_MAX} seeds`);
  });
}
