// Property tests over the cluster simulator: fast-check draws the cluster shape, the fault
// probabilities, the workload and the seed (asyncProperty), or an explicit fault schedule
// (fc.commands, so a failure shrinks to a short list of faults), and every run must keep all
// checkers quiet: no acknowledged acks=all record lost, no Jepsen anomaly, convergence after
// healing. A failure prints fast-check's seed and path; replay it with
//   SIM_PROPERTY_SEED=<seed> SIM_PROPERTY_PATH=<path> npx tap test/sim/cluster-properties.test.ts
// and the failing simulator run itself with the `driftwood sim` command printed beside it.
// SIM_PROPERTY_RUNS sets the number of runs (CI: a few; `make sim`: many).
import fc from 'fast-check';
import t from 'tap';
import { faultKinds, runClusterSim, type ClusterSimOptions, type FaultKind, type ScheduledFault } from '../../sim/cluster-sim.js';

const RUNS = Number(process.env.SIM_PROPERTY_RUNS ?? 6);
const replay = process.env.SIM_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.SIM_PROPERTY_SEED), path: process.env.SIM_PROPERTY_PATH ?? '' };
const FAULT_MS = 8000;
const HEAL_MS = 20_000;

/** Runs one simulation; a violation fails the property with the command that replays the seed. */
async function holds(options: ClusterSimOptions): Promise<void> {
  const result = await runClusterSim(options);
  if (result.violations.length === 0) return;
  const shape = `--nodes ${options.nodes} --partitions ${options.partitions ?? 3} --rf ${options.replicationFactor ?? 3} --fault-ms ${options.faultMs} --heal-ms ${options.healMs}`;
  throw new Error(`seed ${options.seed} (${shape}; workload ${JSON.stringify(options.workload)}; links ${JSON.stringify(options.linkFaults)}; fault weights ${JSON.stringify(options.faultWeights)}${options.schedule === undefined ? '' : `; schedule ${JSON.stringify(options.schedule)}`}):\n${result.violations.slice(0, 5).join('\n')}`);
}

const shape = fc.integer({ min: 3, max: 5 }).chain((nodes) => fc.record({
  nodes: fc.constant(nodes),
  partitions: fc.integer({ min: 1, max: 6 }),
  replicationFactor: fc.integer({ min: 1, max: nodes }),
  // Consumer-group members sharing the data topic (0: none).
  groupMembers: fc.integer({ min: 0, max: 4 }),
}));

const workload = fc.record({
  acksAllShare: fc.double({ min: 0, max: 1, noNaN: true }),
  keyedShare: fc.double({ min: 0, max: 1, noNaN: true }),
  produceGapMs: fc.integer({ min: 5, max: 300 }),
});

const linkFaults = fc.record({
  delayMsMin: fc.constant(1),
  delayMsMax: fc.integer({ min: 2, max: 40 }),
  lossProbability: fc.double({ min: 0, max: 0.05, noNaN: true }),
  duplicateProbability: fc.double({ min: 0, max: 0.03, noNaN: true }),
});

// The fault mix: how likely each kind is (0: never).
const faultWeights = fc.record(Object.fromEntries(faultKinds.map((kind) => [kind, fc.integer({ min: 0, max: 5 })])) as Record<FaultKind, fc.Arbitrary<number>>);

void t.test(`any cluster shape, fault mix, workload and seed keeps every checker quiet (${RUNS} runs)`, async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(shape, workload, linkFaults, faultWeights, fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (cluster, load, links, weights, seed) => {
      runs += 1;
      await holds({ seed, ...cluster, faultMs: FAULT_MS, healMs: HEAL_MS, workload: load, linkFaults: links, faultWeights: weights, faults: new Set(faultKinds) });
    }),
    { numRuns: RUNS, ...replay },
  );
  t.equal(runs, replay.seed === undefined ? RUNS : runs, `${runs} simulations ran`);
});

/** One fault of an explicit schedule: after `gapMs` more virtual ms, `kind` against `target` for `downMs`. */
class FaultCommand implements fc.Command<{ atMs: number }, { schedule: ScheduledFault[] }> {
  constructor(readonly kind: FaultKind, readonly target: number, readonly gapMs: number, readonly downMs: number) {}

  check(model: Readonly<{ atMs: number }>): boolean {
    return model.atMs + this.gapMs < FAULT_MS;
  }

  run(model: { atMs: number }, real: { schedule: ScheduledFault[] }): void {
    model.atMs += this.gapMs;
    real.schedule.push({ atMs: model.atMs, kind: this.kind, target: this.target, downMs: this.downMs });
  }

  toString(): string {
    return `${this.kind}(target ${this.target}, +${this.gapMs} ms, ${this.downMs} ms)`;
  }
}

const faultCommand = fc.tuple(fc.constantFrom(...faultKinds), fc.nat({ max: 1000 }), fc.integer({ min: 50, max: 2000 }), fc.integer({ min: 100, max: 4000 }))
  .map(([kind, target, gapMs, downMs]) => new FaultCommand(kind, target, gapMs, downMs));

void t.test(`explicit fault schedules (fc.commands) keep every checker quiet (${RUNS} runs)`, async (t) => {
  const kinds = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fc.commands([faultCommand], { maxCommands: 12 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (commands, seed) => {
      const real = { schedule: [] as ScheduledFault[] };
      fc.modelRun(() => ({ model: { atMs: 0 }, real }), commands);
      for (const fault of real.schedule) kinds.set(fault.kind, (kinds.get(fault.kind) ?? 0) + 1);
      await holds({ seed, nodes: 3, partitions: 3, replicationFactor: 3, faultMs: FAULT_MS, healMs: HEAL_MS, schedule: real.schedule });
    }),
    { numRuns: RUNS, ...replay },
  );
  t.ok(kinds.size > 0, `faults scheduled: ${JSON.stringify(Object.fromEntries(kinds))}`);
});
