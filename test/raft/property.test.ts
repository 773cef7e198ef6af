// Property: random schedules of ticks, proposals, message delivery in any order, drops,
// duplicates, partitions, compactions, reads, leader transfers, asynchronous persistence and
// crash-restarts (a restart is a new Raft from what was persisted) over 3 and 5 voters never
// break election safety, log matching, committed entries or the applied sequence; and once the
// faults stop, the cluster elects a leader, commits a new entry and every node applies the
// same sequence.
//
// A failure prints fast-check's seed and path; replay it with
//   RAFT_SEED=<seed> RAFT_PATH=<path> npx tap --disable-coverage test/raft/property.test.ts
// RAFT_RUNS sets the number of runs per cluster size.
import fc from 'fast-check';
import t from 'tap';
import type { RaftBug } from '../../raft/types.js';
import { SafetyChecker } from './checker.js';
import { Network, violation } from './harness.js';

const RUNS = Number(process.env.RAFT_RUNS ?? 500);
const SEED = process.env.RAFT_SEED === undefined ? undefined : Number(process.env.RAFT_SEED);
const PATH = process.env.RAFT_PATH;

type Command =
  | { kind: 'tick' | 'propose' | 'process' | 'begin' | 'complete' | 'restart' | 'compact' | 'read' | 'isolate'; node: number }
  | { kind: 'deliver' | 'drop' | 'dup'; pick: number }
  | { kind: 'tickAll' | 'deliverAll' | 'round' | 'heal' }
  | { kind: 'transfer'; node: number; to: number }
  | { kind: 'partition'; mask: number };

const nodeCommand = (kind: 'tick' | 'propose' | 'process' | 'begin' | 'complete' | 'restart' | 'compact' | 'read' | 'isolate') =>
  fc.record({ kind: fc.constant(kind), node: fc.nat() });
const pickCommand = (kind: 'deliver' | 'drop' | 'dup') => fc.record({ kind: fc.constant(kind), pick: fc.nat() });
const plainCommand = (kind: 'tickAll' | 'deliverAll' | 'round' | 'heal') => fc.record({ kind: fc.constant(kind) });

/**
 * Two weather profiles: stormy (faults at every turn: drops, duplicates, crashes, partitions)
 * and calm (mostly a working network, so logs grow long enough to compact, snapshot and
 * transfer leadership often). Weights per command kind.
 */
const profiles = {
  stormy: { tick: 10, tickAll: 6, propose: 10, deliver: 24, deliverAll: 6, round: 10, drop: 3, dup: 2, process: 20, begin: 3, complete: 3, restart: 2, compact: 3, read: 3, transfer: 1, isolate: 2, partition: 2, heal: 3 },
  calm: { tick: 4, tickAll: 4, propose: 16, deliver: 16, deliverAll: 6, round: 20, drop: 1, dup: 1, process: 16, begin: 2, complete: 2, restart: 1, compact: 4, read: 4, transfer: 1, isolate: 1, partition: 1, heal: 2 },
} as const;
type Profile = keyof typeof profiles;

function commandArb(profile: Profile): fc.Arbitrary<Command> {
  const w = profiles[profile];
  return fc.oneof(
    { arbitrary: nodeCommand('tick'), weight: w.tick },
    { arbitrary: plainCommand('tickAll'), weight: w.tickAll },
    { arbitrary: nodeCommand('propose'), weight: w.propose },
    { arbitrary: pickCommand('deliver'), weight: w.deliver },
    { arbitrary: plainCommand('deliverAll'), weight: w.deliverAll },
    { arbitrary: plainCommand('round'), weight: w.round },
    { arbitrary: pickCommand('drop'), weight: w.drop },
    { arbitrary: pickCommand('dup'), weight: w.dup },
    { arbitrary: nodeCommand('process'), weight: w.process },
    { arbitrary: nodeCommand('begin'), weight: w.begin },
    { arbitrary: nodeCommand('complete'), weight: w.complete },
    { arbitrary: nodeCommand('restart'), weight: w.restart },
    { arbitrary: nodeCommand('compact'), weight: w.compact },
    { arbitrary: nodeCommand('read'), weight: w.read },
    { arbitrary: fc.record({ kind: fc.constant('transfer' as const), node: fc.nat(), to: fc.nat() }), weight: w.transfer },
    { arbitrary: nodeCommand('isolate'), weight: w.isolate },
    { arbitrary: fc.record({ kind: fc.constant('partition' as const), mask: fc.nat() }), weight: w.partition },
    { arbitrary: plainCommand('heal'), weight: w.heal },
  );
}

interface Scenario {
  seed: number;
  commands: Command[];
}

const scenarioArb = (profile: Profile): fc.Arbitrary<Scenario> =>
  fc.record({
    seed: fc.nat(),
    commands: fc.array(commandArb(profile), { minLength: 50, maxLength: 400, size: 'max' }),
  });

/** How often each command ran, so the test shows it exercised what it claims. */
const ran = new Map<string, number>();
/** What the schedules made the nodes do: message types sent, snapshots installed, reads served. */
const seen = new Map<string, number>();
function saw(what: string, count = 1): void {
  seen.set(what, (seen.get(what) ?? 0) + count);
}

interface RunOptions {
  voters: number;
  /** Elect a first leader on a working network before the schedule starts. */
  bootstrap?: boolean;
  observers?: number;
  bugs?: ReadonlySet<RaftBug>;
  /** Check the persistence contract in the driver (off: see a bug's consequences instead). */
  checkContract: boolean;
}

function runScenario(scenario: Scenario, options: RunOptions): void {
  const voterIds = Array.from({ length: options.voters }, (_, i) => i + 1);
  const observerIds = Array.from({ length: options.observers ?? 0 }, (_, i) => options.voters + i + 1);
  const ids = [...voterIds, ...observerIds];
  const createOptions: Parameters<typeof Network.create>[1] = {
    seed: scenario.seed,
    observers: observerIds,
    // Small limits so that flow control, chunked snapshots and size-limited appends all run.
    config: { electionTicks: 5, heartbeatTicks: 1, maxEntriesPerAppend: 2, maxInflightAppends: 3, snapshotChunkBytes: 48 },
  };
  if (options.bugs !== undefined) createOptions.bugs = options.bugs;
  const net = Network.create(voterIds, createOptions);
  for (const node of net.nodes.values()) node.checkContract = options.checkContract;
  const checker = new SafetyChecker(net);
  if (options.bootstrap === true) {
    for (let round = 0; round < 100 && net.leaders().length === 0; round++) {
      net.tickAll();
      net.stabilize();
    }
  }
  net.onReady = (node, rd) => {
    checker.onReady(node, rd);
    for (const rs of rd.readStates) {
      const floor = readFloor.get(rs.requestId) ?? 0;
      violation(rs.index >= floor, `read ${rs.requestId} served at ${rs.index} by node ${node.id}, but ${floor} was committed before it was asked`);
    }
    if (options.bugs !== undefined) return;
    for (const m of rd.messages) saw(`message ${m.type}`);
    if (rd.snapshot !== null) saw('snapshot installed');
    saw('read served', rd.readStates.length);
    saw('entries committed', rd.committed.length);
    if (rd.softState?.role === 'leader') saw('leader elected');
  };
  let proposals = 0;
  const readFloor = new Map<number, number>();
  let reads = 0;
  const nodeOf = (n: number): number => (n % ids.length) + 1;
  // Proposals, reads and transfers go to the leader with the highest term when there is one:
  // at a random node most of them would only exercise the "not leader" answer.
  const leaderOr = (n: number): number => {
    const leaders = net.leaders().sort((a, b) => net.raft(b).term - net.raft(a).term);
    return leaders[0] ?? nodeOf(n);
  };
  for (const command of scenario.commands) {
    ran.set(command.kind, (ran.get(command.kind) ?? 0) + 1);
    switch (command.kind) {
      case 'tick':
        net.tick(nodeOf(command.node));
        break;
      case 'tickAll':
        net.tickAll();
        break;
      case 'propose':
        net.propose(leaderOr(command.node), `p${++proposals}`);
        break;
      case 'deliver':
        if (net.queue.length > 0) net.deliverAt(command.pick % net.queue.length);
        break;
      case 'deliverAll':
        for (const m of net.drain()) net.deliver(m);
        break;
      case 'drop':
        if (net.queue.length > 0) net.queue.splice(command.pick % net.queue.length, 1);
        break;
      case 'dup': {
        const m = net.queue[command.pick % Math.max(1, net.queue.length)];
        if (m !== undefined) net.queue.push(m);
        break;
      }
      case 'round':
        // Every node persists and sends, and every message in flight arrives.
        for (const id of ids) net.process(id);
        for (const m of net.drain()) net.deliver(m);
        break;
      case 'process':
        net.process(nodeOf(command.node));
        break;
      case 'begin':
        net.node(nodeOf(command.node)).begin();
        break;
      case 'complete':
        net.process(nodeOf(command.node));
        break;
      case 'restart':
        net.restart(nodeOf(command.node));
        break;
      case 'compact':
        net.node(nodeOf(command.node)).compact();
        break;
      case 'read': {
        // Linearizable: the answer must cover every entry committed anywhere before the read.
        const id = ++reads;
        if (net.raft(leaderOr(command.node)).readIndex(id)) readFloor.set(id, Math.max(...ids.map((n) => net.raft(n).commitIndex)));
        break;
      }
      case 'transfer':
        net.raft(leaderOr(command.node)).transferLeadership(nodeOf(command.to));
        break;
      case 'isolate':
        net.isolate(nodeOf(command.node));
        break;
      case 'partition':
        // Two sides by the bits of mask: every link across is cut, both ways.
        for (const a of ids) for (const b of ids) if (((command.mask >> a) & 1) !== ((command.mask >> b) & 1)) net.cutLink(a, b);
        break;
      case 'heal':
        net.heal();
        break;
    }
    checker.check();
  }
  converge(net, checker, ids);
}

/** After the faults: heal, and require a leader, a new commit and identical state machines. */
function converge(net: Network, checker: SafetyChecker, ids: number[]): void {
  net.heal();
  let final: number | null = null;
  let leader = 0;
  for (let round = 0; round < 400; round++) {
    net.tickAll();
    net.stabilize();
    checker.check();
    const leaders = net.leaders();
    if (leaders.length !== 1 || leaders[0] === undefined) continue;
    leader = leaders[0];
    if (final === null) final = net.propose(leader, 'final');
    if (final !== null && ids.every((id) => net.node(id).appliedIndex >= (final ?? 0))) break;
  }
  violation(final !== null, `no stable leader after the faults stopped (leaders: ${net.leaders().join(',')})`);
  const reference = JSON.stringify(net.node(leader).applied.slice(0, final));
  for (const id of ids) {
    const node = net.node(id);
    violation(node.appliedIndex >= final, `node ${id} applied only ${node.appliedIndex} of ${final} after the faults stopped`);
    violation(JSON.stringify(node.applied.slice(0, final)) === reference, `node ${id} applied a different sequence than leader ${leader}`);
  }
}

function parameters(): fc.Parameters<[Scenario]> {
  const params: fc.Parameters<[Scenario]> = { numRuns: RUNS };
  if (SEED !== undefined) params.seed = SEED;
  if (PATH !== undefined) params.path = PATH;
  return params;
}

const clusters = [
  [3, 0, 'stormy'],
  [5, 0, 'stormy'],
  [3, 2, 'stormy'],
  [3, 0, 'calm'],
  [5, 0, 'calm'],
] as const;
for (const [voters, observers, profile] of clusters) {
  void t.test(`${profile} random schedules keep Raft safe and live with ${voters} voters and ${observers} observers`, (t) => {
    const result = fc.check(
      fc.property(scenarioArb(profile), (scenario) => {
        runScenario(scenario, { voters, observers, bootstrap: profile === 'calm', checkContract: true });
      }),
      parameters(),
    );
    t.comment(`${result.numRuns} runs, seed ${result.seed}`);
    if (result.failed) {
      t.comment(`replay: RAFT_SEED=${result.seed} RAFT_PATH=${result.counterexamplePath ?? ''}`);
      t.comment(String(result.errorInstance));
    }
    t.notOk(result.failed, fc.defaultReportMessage(result) ?? 'no counterexample');
    t.end();
  });
}

// Each deliberate bug must break the property (the driver's contract check off, so that what
// catches raft-ack-before-persist is its consequence: a forgotten vote or lost entries).
const bugRuns = Number(process.env.RAFT_BUG_RUNS ?? 300);
for (const bug of ['raft-vote-twice', 'raft-ack-before-persist'] as const) {
  void t.test(`the property catches ${bug}`, (t) => {
    const result = fc.check(
      fc.property(scenarioArb('stormy'), (scenario) => {
        runScenario(scenario, { voters: 3, bugs: new Set([bug]), checkContract: false });
      }),
      { numRuns: bugRuns, seed: 1, endOnFailure: true },
    );
    t.ok(result.failed, `${bug} went unnoticed in ${bugRuns} runs`);
    if (result.failed) t.comment(`caught by: ${String(result.errorInstance).split('\n')[0] ?? ''}`);
    t.end();
  });
}

void t.test('the schedules exercised every command and every message type', (t) => {
  t.comment(JSON.stringify(Object.fromEntries(seen)));
  for (const what of ['snapshot installed', 'read served', 'entries committed', 'leader elected']) t.ok((seen.get(what) ?? 0) > 0, `${what}: ${seen.get(what) ?? 0}`);
  const types = ['preVote', 'preVoteResponse', 'vote', 'voteResponse', 'append', 'appendResponse', 'heartbeat', 'heartbeatResponse', 'snapshot', 'snapshotResponse', 'timeoutNow'];
  for (const type of types) t.ok((seen.get(`message ${type}`) ?? 0) > 0, `message ${type}: ${seen.get(`message ${type}`) ?? 0}`);
  for (const kind of ['tick', 'tickAll', 'propose', 'deliver', 'deliverAll', 'round', 'partition', 'drop', 'dup', 'process', 'begin', 'complete', 'restart', 'compact', 'read', 'transfer', 'isolate', 'heal']) {
    t.ok((ran.get(kind) ?? 0) > 0, `${kind} ran ${ran.get(kind) ?? 0} times`);
  }
  t.end();
});
