// The Raft simulation: N real RaftNode drivers on simulated ports (scheduler clock, seeded
// Rng, lossy network, memory-level KV kept across restarts), a workload that proposes
// entries, a nemesis that crashes, pauses, partitions and degrades links on a schedule drawn
// from the seed, then heals, and checkers that watch every step:
//   - at most one leader per term;
//   - log matching: two logs holding the same (index, term) hold the same prefix (hash chain);
//   - leader completeness: a new leader's log holds every entry committed before it;
//   - state machine safety: every node applies the same entry at each index;
//   - acknowledged proposals are never lost; a node's persisted commit never goes back;
//   - liveness: after healing, a leader is elected and every node catches up in bounded time.
import type { MemoryLevel } from 'memory-level';
import type { Entry, Message, NodeId, NodeIdOrNone, RaftBug, Ready, Role } from '../raft/index.js';
import { defaultRaftTiming, RaftNode, type RaftNodeConfig, type StateMachine } from '../src/quorum/raft-node.js';
import { RaftStorage } from '../src/quorum/raft-storage.js';
import type { KV } from '../storage/kv.js';
import { hash64 } from './hash.js';
import { createMemoryLevel, openMemoryKV, slowKV } from './kv.js';
import { calmLinks, SimNetwork, type LinkFaults } from './network.js';
import { SeededRng } from './rng.js';
import { Scheduler, SimClock } from './scheduler.js';

/**
 * Raft's figure 8, staged: leader L keeps taking entries with only F1 reachable; the other
 * side elects M, which takes entries nobody receives and dies; L's side leads again and
 * copies its old-term entries to a majority; that leader dies the moment its commit index
 * moves; M returns. A leader that counted old-term replicas as committed has now lost a
 * committed entry to M; a correct one never committed it.
 */
interface Figure8 {
  phase: 'split' | 'minority-leader-muted' | 'reelect' | 'done';
  readonly l: NodeId;
  readonly f1: NodeId;
  m: NodeIdOrNone;
  mTerm: number;
}

export interface RaftSimOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Virtual time with faults, then the same again healed for convergence. */
  readonly faultMs: number;
  readonly healMs: number;
  readonly bugs: ReadonlySet<RaftBug>;
}

export interface RaftSimResult {
  seed: number;
  violations: string[];
  simulatedMs: number;
  events: number;
  traceHash: string;
  /** Virtual ms from losing a leader to the next leader, one per such loss. */
  electionMs: number[];
  proposed: number;
  acknowledged: number;
  committedIndex: number;
}

export const defaultRaftSimOptions = { nodes: 5, faultMs: 20_000, healMs: 10_000 } as const;
/** A limit on events per run, so a livelock fails instead of running forever. */
const EVENTS_PER_RUN_MAX = 5_000_000;

/** The replicated state for the checkers: how many entries and a hash chain over them. */
class ChainStateMachine implements StateMachine {
  index = 0;
  chain = '';

  apply(entry: Entry): void {
    this.chain = chainHash(this.chain, entry.index, entry.term, entry.data);
    this.index = entry.index;
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify({ index: this.index, chain: this.chain }));
  }

  restore(data: Uint8Array): void {
    const state = JSON.parse(Buffer.from(data).toString('utf8')) as { index: number; chain: string };
    this.index = state.index;
    this.chain = state.chain;
  }
}

function chainHash(previous: string, index: number, term: number, data: Uint8Array): string {
  return hash64(previous, `${index}/${term}/`, data);
}

function dataHash(entry: Entry): string {
  return `${entry.term}:${entry.type}:${hash64(entry.data)}`;
}

interface Host {
  readonly id: NodeId;
  readonly db: MemoryLevel<string, Uint8Array>;
  clock: SimClock;
  node: RaftNode | null;
  starting: boolean;
  /** What this node's log holds, as the checkers see it: index -> {term, chain}. */
  shadow: Map<number, { term: number; chain: string | null }>;
  shadowBase: { index: number; chain: string | null };
  persistedCommit: number;
  paused: boolean;
  /** Bumped at every start and crash: writes of an older generation never land. */
  generation: number;
}

export async function runRaftSim(options: RaftSimOptions): Promise<RaftSimResult> {
  return new RaftSim(options).run();
}

class RaftSim {
  private readonly scheduler = new Scheduler(0);
  private readonly rng: SeededRng;
  private readonly nemesisRng: SeededRng;
  private readonly network: SimNetwork<Message>;
  private readonly hosts: Host[] = [];
  private readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Committed entries as first applied anywhere: index -> data hash. */
  private readonly committed = new Map<number, string>();
  private committedIndex = 0;
  /** (index, term) -> chain hash, across all nodes' logs. */
  private readonly chainAt = new Map<string, string>();
  private readonly acked = new Map<number, string>();
  private proposed = 0;
  private readonly electionMs: number[] = [];
  /**
   * The stopwatch for election time: started when the leader is lost while every other node
   * is up and connected (so a quorum can elect at once), stopped by the next leader; any
   * other fault meanwhile voids it, since the figure is about elections, not outages.
   */
  private electionWatch: { fromMs: number; term: number } | null = null;
  private readonly ids: NodeId[];
  /** Replication settings drawn per seed: small appends and windows open more interleavings. */
  private readonly shape: { maxEntriesPerAppend: number; maxInflightAppends: number; snapshotEveryEntries: number; snapshotChunkBytes: number };
  /** Mean virtual ms between faults and between proposals, drawn per seed. */
  private readonly faultGapMs: number;
  private readonly proposalGapMs: number;
  private readonly churnProbability: number;
  private readonly crashAfterCommitProbability: number;
  private readonly crashDuringWriteProbability: number;
  /** The figure-8 scenario in progress, if any (see startFigure8). */
  private figure8: Figure8 | null = null;
  private readonly figure8Enabled: boolean;

  constructor(private readonly options: RaftSimOptions) {
    this.rng = new SeededRng(options.seed);
    this.nemesisRng = this.rng.fork();
    const pick = <T>(choices: readonly T[]): T => choices[this.nemesisRng.int(choices.length)] as T;
    this.shape = {
      maxEntriesPerAppend: pick([1, 2, 4, 64]),
      maxInflightAppends: pick([1, 4, 64]),
      snapshotEveryEntries: pick([20, 50, 500]),
      snapshotChunkBytes: pick([16, 64, 4096]),
    };
    this.faultGapMs = pick([400, 1000, 2000]);
    this.proposalGapMs = pick([40, 100, 300]);
    this.churnProbability = pick([0, 0.3, 0.7]);
    this.crashAfterCommitProbability = pick([0, 0.02, 0.1]);
    this.figure8Enabled = this.nemesisRng.float() < 0.5;
    this.crashDuringWriteProbability = pick([0, 0.002, 0.01]);
    this.network = new SimNetwork<Message>(this.scheduler, this.rng.fork(), drawFaults(this.nemesisRng), copyRaftMessage);
    this.ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  }

  async run(): Promise<RaftSimResult> {
    for (const id of this.ids) {
      this.hosts.push({ id, db: createMemoryLevel(), clock: new SimClock(this.scheduler, `n${id}`), node: null, starting: false, shadow: new Map(), shadowBase: { index: 0, chain: '' }, persistedCommit: 0, paused: false, generation: 0 });
    }
    for (const host of this.hosts) await this.startNode(host);
    this.scheduleWorkload();
    this.scheduleNemesis(this.options.faultMs);
    const endMs = this.options.faultMs + this.options.healMs;
    await this.scheduler.run({ untilMs: this.options.faultMs, eventsMax: EVENTS_PER_RUN_MAX, stop: () => this.violations.length > 0 });
    this.heal();
    await this.scheduler.run({ untilMs: endMs, eventsMax: EVENTS_PER_RUN_MAX, stop: () => this.violations.length > 0 });
    this.checkConverged();
    for (const host of this.hosts) this.stopNode(host);
    return {
      seed: this.options.seed,
      violations: this.violations,
      simulatedMs: this.scheduler.nowMs,
      events: this.scheduler.eventCount,
      traceHash: this.scheduler.traceHash(),
      electionMs: this.electionMs,
      proposed: this.proposed,
      acknowledged: this.acked.size,
      committedIndex: this.committedIndex,
    };
  }

  /** fsync latency of this run's disks: mostly fast, sometimes slow. */
  private diskDelayMs(): number {
    return this.rng.float() < 0.9 ? 0.2 + this.rng.float() * 2 : 5 + this.rng.float() * 30;
  }

  private violation(text: string): void {
    this.violations.push(`t=${this.scheduler.nowMs.toFixed(0)}ms ${text}`);
  }

  // --- nodes ---

  private config(id: NodeId): RaftNodeConfig {
    return { ...defaultRaftTiming, ...this.shape, id, voters: this.ids, observers: [], bugs: this.options.bugs };
  }

  private async startNode(host: Host): Promise<void> {
    host.starting = true;
    host.clock = new SimClock(this.scheduler, `n${host.id}`);
    const generation = ++host.generation;
    const stored = await openMemoryKV(host.db, { copy: false });
    await this.loadShadow(host, stored);
    const kv = slowKV(stored, {
      delayMs: () => this.diskDelayMs(),
      after: (delayMs, run) => { this.scheduler.after(delayMs, `n${host.id} disk`, run); },
      alive: () => host.generation === generation,
      onWriteStart: (delayMs) => { this.maybeCrashDuringWrite(host, generation, delayMs); },
    });
    const node = await RaftNode.start(this.config(host.id), {
      clock: host.clock,
      rng: this.rng.fork(),
      kv,
      transport: { send: (messages) => { this.network.send(messages); } },
      stateMachine: new ChainStateMachine(),
    }, {
      onApply: (entry) => { this.onApply(host, entry); },
      onRoleChange: (role, leader, term) => { this.onRoleChange(host, role, leader, term); },
      onPersisted: (ready) => { this.onPersisted(host, ready); },
      onFatal: (error) => { this.violation(`n${host.id} stopped on a broken invariant: ${error instanceof Error ? error.message : String(error)}`); },
    });
    host.node = node;
    host.starting = false;
    this.network.attach(host.id, (message) => { this.deliver(host, message); });
    this.scheduler.record(`start n${host.id}`);
  }

  /** Hands a message to a node; a broken invariant there was reported through onFatal. */
  private deliver(host: Host, message: Message): void {
    try {
      host.node?.receive(message);
    } catch {
      // onFatal recorded it; the node has stopped.
    }
  }

  /** The checkers' view of a (re)starting node's log: what its KV holds. */
  private async loadShadow(host: Host, kv: KV): Promise<void> {
    const stored = await new RaftStorage(kv).load();
    const base = stored.snapshot?.meta;
    host.shadow = new Map();
    host.shadowBase = base === undefined ? { index: 0, chain: '' } : { index: base.index, chain: this.chainAt.get(`${base.index}/${base.term}`) ?? null };
    if (stored.hardState.commit < host.persistedCommit) this.violation(`n${host.id} restarted with commit ${stored.hardState.commit}, had persisted ${host.persistedCommit}`);
    host.persistedCommit = stored.hardState.commit;
    this.recordEntries(host, stored.entries);
  }

  /** Power loss: in-memory state gone, timers gone, mail lost; the KV keeps what was written. */
  private stopNode(host: Host): void {
    host.generation += 1;
    host.node?.stop();
    host.node = null;
    host.clock.cancelAll();
    host.paused = false;
    this.network.detach(host.id);
  }

  private crash(host: Host, downMs: number): void {
    if (host.node === null) return;
    this.beforeFault(host);
    this.scheduler.record(`crash n${host.id}`);
    this.stopNode(host);
    this.scheduler.after(downMs, `restart n${host.id}`, () => { void this.restart(host); });
  }

  private async restart(host: Host): Promise<void> {
    if (host.node !== null || host.starting) return;
    await this.startNode(host);
  }

  private leader(): Host | undefined {
    return this.hosts.find((host) => host.node?.isLeader === true && !host.paused);
  }

  // --- checkers ---

  private onRoleChange(host: Host, role: Role, _leader: NodeIdOrNone, term: number): void {
    this.scheduler.record(`n${host.id} ${role} term ${term}`);
    if (role !== 'leader') return;
    const previous = this.leaderOfTerm.get(term);
    if (previous !== undefined && previous !== host.id) this.violation(`two leaders in term ${term}: n${previous} and n${host.id}`);
    this.leaderOfTerm.set(term, host.id);
    if (this.electionWatch !== null && term > this.electionWatch.term) {
      this.electionMs.push(this.scheduler.nowMs - this.electionWatch.fromMs);
      this.electionWatch = null;
    }
    this.checkLeaderCompleteness(host, term);
    if (this.figure8 !== null && this.figure8.phase !== 'done') this.figure8OnLeader(host, term);
    else this.maybeDeposeSoon(host);
  }

  /** Stage 1: with a healthy cluster, cut the leader and one follower off from the rest. */
  private startFigure8(): void {
    const leader = this.leader();
    const healthy = this.hosts.every((host) => host.node !== null && !host.paused) && this.network.cutLinks === 0;
    if (leader === undefined || !healthy) return;
    const others = this.ids.filter((id) => id !== leader.id);
    const f1 = others[this.nemesisRng.int(others.length)] ?? 0;
    this.figure8 = { phase: 'split', l: leader.id, f1, m: 0, mTerm: 0 };
    this.electionWatch = null;
    this.network.partition([[leader.id, f1], others.filter((id) => id !== f1)]);
    this.scheduler.record(`figure8 split n${leader.id},n${f1}`);
    // Give up if the stages do not play out: heal and let the random nemesis go on.
    this.scheduler.after(15_000, 'figure8 timeout', () => { if (this.figure8 !== null && this.figure8.phase !== 'done') this.endFigure8(); });
  }

  /** Stages 2 and 4: a leader was elected somewhere while the scenario runs. */
  private figure8OnLeader(host: Host, term: number): void {
    const scenario = this.figure8;
    if (scenario === null) return;
    if (scenario.phase === 'split' && host.id !== scenario.l && host.id !== scenario.f1) {
      // M: its entries reach nobody; it takes a few proposals, then dies.
      scenario.phase = 'minority-leader-muted';
      scenario.m = host.id;
      scenario.mTerm = term;
      for (const other of this.ids) if (other !== host.id) this.network.cutOneWay(host.id, other);
      this.scheduler.after(100 + this.nemesisRng.int(300), 'figure8 crash m', () => {
        this.crash(host, 60_000); // restarted by the scenario, not by the timer
        this.network.heal();
        scenario.phase = 'reelect';
        this.scheduler.record(`figure8 m n${host.id} down, healed`);
      });
    }
  }

  /** Stage 3: L's side leads again and its commit index just moved: it dies now; M returns. */
  private figure8LeaderCommitted(host: Host): void {
    const scenario = this.figure8;
    if (scenario === null) return;
    scenario.phase = 'done';
    this.scheduler.after(this.nemesisRng.int(2), 'figure8 crash leader', () => {
      this.crash(host, 3000 + this.nemesisRng.int(2000));
      const m = this.hosts.find((candidate) => candidate.id === scenario.m);
      this.scheduler.after(100 + this.nemesisRng.int(400), 'figure8 restart m', () => { if (m !== undefined) void this.restart(m); });
      this.scheduler.record(`figure8 leader n${host.id} down after commit`);
    });
  }

  private endFigure8(): void {
    const scenario = this.figure8;
    if (scenario === null) return;
    scenario.phase = 'done';
    this.network.heal();
    const m = this.hosts.find((candidate) => candidate.id === scenario.m);
    if (m !== undefined && m.node === null) void this.restart(m);
  }

  /** Crash at an interesting point: while a synced write is on its way to the disk. */
  private maybeCrashDuringWrite(host: Host, generation: number, delayMs: number): void {
    if (this.scheduler.nowMs >= this.options.faultMs || this.nemesisRng.float() >= this.crashDuringWriteProbability) return;
    this.scheduler.after(this.nemesisRng.float() * delayMs, 'crash during write', () => {
      if (host.generation === generation) this.crash(host, 200 + this.nemesisRng.int(2000));
    });
  }

  /**
   * Crash at an interesting point: a leader that just advanced its commit index dies before
   * its followers learn of it, so the commit is known to one dead node only.
   */
  private maybeCrashAfterCommit(host: Host): void {
    if (this.scheduler.nowMs >= this.options.faultMs || this.nemesisRng.float() >= this.crashAfterCommitProbability) return;
    const downMs = 50 + this.nemesisRng.int(2000);
    this.scheduler.after(this.nemesisRng.int(3), 'crash after commit', () => { this.crash(host, downMs); });
  }

  /**
   * Leader churn: a new leader is sometimes crashed or cut off moments after it wins, with
   * entries of its term on few or no followers. Short-lived leaders and old-term entries on
   * minorities are what Raft's figure 8 is made of.
   */
  private maybeDeposeSoon(host: Host): void {
    if (this.scheduler.nowMs >= this.options.faultMs || this.nemesisRng.float() >= this.churnProbability) return;
    const delayMs = 1 + this.nemesisRng.int(120);
    const downMs = 50 + this.nemesisRng.int(1500);
    const crash = this.nemesisRng.float() < 0.5;
    this.scheduler.after(delayMs, 'depose', () => {
      if (host.node?.isLeader !== true || this.scheduler.nowMs >= this.options.faultMs) return;
      if (crash) this.crash(host, downMs);
      else this.isolate(host, downMs);
    });
  }

  /** A new leader's log must hold every committed entry (those above its snapshot). */
  private checkLeaderCompleteness(host: Host, term: number): void {
    if (host.shadowBase.chain === null) return; // restarted node whose log prefix the checker did not see
    for (let index = host.shadowBase.index + 1; index <= this.committedIndex; index += 1) {
      const expected = this.committed.get(index);
      const entry = host.shadow.get(index);
      if (expected === undefined) continue;
      if (entry === undefined || `${entry.term}` !== expected.split(':')[0]) {
        this.violation(`leader n${host.id} of term ${term} lacks committed entry ${index}`);
        return;
      }
    }
  }

  private onPersisted(host: Host, ready: Ready): void {
    if (ready.hardState !== null) {
      if (ready.hardState.commit < host.persistedCommit) this.violation(`n${host.id} persisted commit ${ready.hardState.commit} after ${host.persistedCommit}`);
      if (ready.hardState.commit > host.persistedCommit && host.node?.isLeader === true) {
        if (this.figure8?.phase === 'reelect' && host.node.status().term > this.figure8.mTerm) this.figure8LeaderCommitted(host);
        else this.maybeCrashAfterCommit(host);
      }
      host.persistedCommit = Math.max(host.persistedCommit, ready.hardState.commit);
    }
    if (ready.snapshot !== null) {
      host.shadow = new Map();
      const known = this.chainAt.get(`${ready.snapshot.meta.index}/${ready.snapshot.meta.term}`) ?? null;
      host.shadowBase = { index: ready.snapshot.meta.index, chain: known };
    }
    this.recordEntries(host, ready.entries);
  }

  /** Log matching: the same (index, term) anywhere must sit on the same chain of entries. */
  private recordEntries(host: Host, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    for (let index = first.index; host.shadow.delete(index); index += 1) {
      // entries from first.index on are replaced (the shadow log is dense, so stop at the first gap)
    }
    for (const entry of entries) {
      const previous = entry.index - 1 === host.shadowBase.index ? host.shadowBase.chain : host.shadow.get(entry.index - 1)?.chain ?? null;
      const chain = previous === null ? null : chainHash(previous, entry.index, entry.term, entry.data);
      host.shadow.set(entry.index, { term: entry.term, chain });
      if (chain === null) continue;
      const key = `${entry.index}/${entry.term}`;
      const seen = this.chainAt.get(key);
      if (seen === undefined) this.chainAt.set(key, chain);
      else if (seen !== chain) this.violation(`log matching: n${host.id} holds (${key}) on a different prefix`);
    }
  }

  /** State machine safety: every node applies the same entry at each index. */
  private onApply(host: Host, entry: Entry): void {
    const hash = dataHash(entry);
    const seen = this.committed.get(entry.index);
    if (seen === undefined) {
      this.committed.set(entry.index, hash);
      this.committedIndex = Math.max(this.committedIndex, entry.index);
      this.scheduler.record(`commit ${entry.index} ${hash}`);
    } else if (seen !== hash) {
      this.violation(`n${host.id} applied ${hash} at ${entry.index}, others applied ${seen}`);
    }
  }

  private checkConverged(): void {
    if (this.violations.length > 0) return; // the run stopped at the first violation
    const leader = this.leader();
    if (leader === undefined) {
      this.violation(`no leader ${this.options.healMs} ms after healing`);
      return;
    }
    for (const [index, hash] of this.acked) {
      const committed = this.committed.get(index);
      if (committed !== hash) this.violation(`acknowledged entry ${index} (${hash}) lost: committed ${committed ?? 'nothing'}`);
    }
    for (const host of this.hosts) {
      const applied = host.node?.status().applied ?? 0;
      if (applied < this.committedIndex) this.violation(`n${host.id} applied ${applied} of ${this.committedIndex} after healing`);
    }
  }

  // --- workload ---

  private scheduleWorkload(): void {
    const delayMs = 1 + this.rng.int(this.proposalGapMs * 2);
    this.scheduler.after(delayMs, 'workload', () => {
      this.proposeOne();
      if (this.scheduler.nowMs < this.options.faultMs + this.options.healMs / 2) this.scheduleWorkload();
    });
  }

  /** Proposes to a node that believes it leads, stale ones included (their entries must never count). */
  private proposeOne(): void {
    const leaders = this.hosts.filter((candidate) => candidate.node?.isLeader === true && !candidate.paused);
    const host = leaders[this.rng.int(Math.max(1, leaders.length))];
    if (host?.node == null) return;
    const serial = this.proposed++;
    const data = Buffer.from(`s${this.options.seed}-p${serial}`);
    const term = host.node.status().term;
    host.node.propose(data).then(
      (index) => {
        this.acked.set(index, `${term}:normal:${hash64(data)}`);
        this.scheduler.record(`ack ${index}`);
      },
      () => undefined,
    );
  }

  // --- nemesis ---

  private scheduleNemesis(untilMs: number): void {
    const delayMs = 50 + this.nemesisRng.int(this.faultGapMs * 2);
    this.scheduler.after(delayMs, 'nemesis', () => {
      if (this.scheduler.nowMs >= untilMs) return;
      if (this.figure8 === null || this.figure8.phase === 'done') {
        if (this.figure8Enabled && this.figure8 === null && this.nemesisRng.float() < 0.3) this.startFigure8();
        else this.injectFault();
      }
      this.scheduleNemesis(untilMs);
    });
  }

  private injectFault(): void {
    const live = this.hosts.filter((host) => host.node !== null);
    const pick = (hosts: Host[]): Host | undefined => (hosts.length === 0 ? undefined : hosts[this.nemesisRng.int(hosts.length)]);
    const downMs = 200 + this.nemesisRng.int(4000);
    const choice = this.nemesisRng.int(9);
    const target = choice <= 1 || choice === 8 ? this.leader() ?? pick(live) : pick(live);
    if (target === undefined) return;
    switch (choice) {
      case 0: case 2: this.crash(target, downMs); return;
      case 1: case 3: this.isolate(target, downMs); return;
      case 8: this.mute(target, downMs); return;
      case 4: this.splitRandomly(downMs); return;
      case 5: this.pause(target, downMs); return;
      case 6: this.cutOneWay(target, downMs); return;
      default: target.clock.jump(this.nemesisRng.int(20_000) - 10_000); this.scheduler.record(`clock jump n${target.id}`);
    }
  }

  private isolate(host: Host, downMs: number): void {
    this.beforeFault(host);
    this.network.isolate(host.id, this.ids);
    this.scheduler.record(`isolate n${host.id}`);
    this.scheduler.after(downMs, 'heal', () => { this.network.heal(); });
  }

  private splitRandomly(downMs: number): void {
    const shuffled = [...this.ids].sort(() => this.nemesisRng.float() - 0.5);
    const cut = 1 + this.nemesisRng.int(this.ids.length - 1);
    this.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
    this.scheduler.record(`partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`);
    this.electionWatch = null;
    this.scheduler.after(downMs, 'heal', () => { this.network.heal(); });
  }

  private cutOneWay(host: Host, downMs: number): void {
    this.electionWatch = null;
    const other = this.ids[this.nemesisRng.int(this.ids.length)];
    if (other === undefined || other === host.id) return;
    this.network.cutOneWay(host.id, other);
    this.scheduler.record(`cut n${host.id} -> n${other}`);
    this.scheduler.after(downMs, 'heal', () => { this.network.heal(); });
  }

  /**
   * The node hears everyone but nobody hears it (a one-way partition): a muted leader keeps
   * appending proposals that reach no follower, in a term the others will leave behind.
   */
  private mute(host: Host, downMs: number): void {
    this.beforeFault(host);
    for (const other of this.ids) if (other !== host.id) this.network.cutOneWay(host.id, other);
    this.scheduler.record(`mute n${host.id}`);
    this.scheduler.after(downMs, 'heal', () => { this.network.heal(); });
  }

  /** SIGSTOP: no timers, no mail; SIGCONT later with stale beliefs. */
  private pause(host: Host, downMs: number): void {
    if (host.node === null || host.paused) return;
    this.beforeFault(host);
    host.paused = true;
    host.clock.pause();
    this.network.detach(host.id);
    this.scheduler.record(`pause n${host.id}`);
    this.scheduler.after(downMs, `resume n${host.id}`, () => {
      if (!host.paused || host.node === null) return;
      host.paused = false;
      host.clock.resume();
      this.network.attach(host.id, (message) => { this.deliver(host, message); });
      this.scheduler.record(`resume n${host.id}`);
    });
  }

  /** Starts the election stopwatch when a healthy cluster loses its leader; voids it otherwise. */
  private beforeFault(target: Host): void {
    const others = this.hosts.filter((host) => host !== target);
    // Healthy: every other node is up, connected, and follows the target as its leader.
    const healthy = others.every((host) => host.node !== null && !host.paused && host.node.leader === target.id) && this.network.cutLinks === 0;
    const node = target.node;
    this.electionWatch = healthy && node?.isLeader === true && !target.paused ? { fromMs: this.scheduler.nowMs, term: node.status().term } : null;
  }

  private heal(): void {
    this.network.heal();
    this.network.faults = calmLinks;
    for (const host of this.hosts) {
      if (host.paused && host.node !== null) {
        host.paused = false;
        host.clock.resume();
        this.network.attach(host.id, (message) => { this.deliver(host, message); });
      }
      if (host.node === null && !host.starting) void this.restart(host);
    }
    this.scheduler.record('heal');
  }
}

/** Link faults for the run, drawn from its seed. */
function drawFaults(rng: SeededRng): LinkFaults {
  const delayMsMax = 2 + rng.int(40);
  return { delayMsMin: 1, delayMsMax, lossProbability: rng.float() * 0.05, duplicateProbability: rng.float() * 0.03 };
}

/** Messages are never mutated once sent; only an append's entry list is copied, as a receiver may keep it. */
export function copyRaftMessage(message: Message): Message {
  return message.type === 'append' ? { ...message, entries: [...message.entries] } : message;
}
