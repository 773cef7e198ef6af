// RaftNode: the driver that runs the pure Raft core (raft/) over the ports. It ticks the core
// from the Clock, feeds it messages from the Transport, and for each Ready does, in this order
// (etcd's contract): persist the snapshot, entries and hard state with one synced KV batch;
// only then send the messages; apply the committed entries to the state machine; advance().
// The same class runs in a real process and in the simulator.
import assert from 'node:assert/strict';
import { Raft, type Entry, type Message, type NodeId, type NodeIdOrNone, type RaftBug, type RaftStatus, type Ready, type Role, type Snapshot } from '../../raft/index.js';
import type { Clock, TimerHandle } from '../../storage/clock.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { KV } from '../../storage/kv.js';
import type { DurationSink } from '../../storage/observe.js';
import type { Rng } from '../../storage/rng.js';
import { RaftStorage } from './raft-storage.js';
import type { RaftTransport } from './transport.js';

/** What the quorum replicates: applied in log order on every node, snapshotted for compaction. */
export interface StateMachine {
  apply(entry: Entry): void;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftNodeConfig {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  /** The observers at start; setObservers() changes them while the node runs. */
  readonly observers: readonly NodeId[];
  /** One tick of the core; heartbeats go every tick, elections after 10-20 (KRaft-like defaults). */
  readonly tickMs: number;
  readonly electionTicks: number;
  /** Spread of the randomized election timeout, in ticks: [electionTicks, electionTicks + this). */
  readonly electionJitterTicks: number;
  readonly heartbeatTicks: number;
  /** A proposal or read that has not completed by then fails with REQUEST_TIMED_OUT. */
  readonly requestTimeoutMs: number;
  /** Take a snapshot and compact the log once this many entries were applied since the last one. */
  readonly snapshotEveryEntries: number;
  readonly maxEntriesPerAppend: number;
  readonly maxBytesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly snapshotChunkBytes: number;
  readonly bugs?: ReadonlySet<RaftBug>;
}

export const defaultRaftTiming = {
  tickMs: 100,
  // Election timeout randomized in [1.0 s, 1.4 s) (ticks start at a random phase per node):
  // with four followers the first one times out well inside 1.5 s of losing the leader.
  // A lost round retries after a short backoff (see the core), so the rare tie costs little.
  electionTicks: 10,
  electionJitterTicks: 4,
  heartbeatTicks: 1,
  requestTimeoutMs: 5000,
  snapshotEveryEntries: 10_000,
  maxEntriesPerAppend: 256,
  maxBytesPerAppend: 1024 * 1024,
  maxInflightAppends: 64,
  snapshotChunkBytes: 256 * 1024,
} as const;

export interface RaftNodePorts {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly kv: KV;
  readonly transport: RaftTransport;
  readonly stateMachine: StateMachine;
  /** Where each committed proposal reports the time from propose() to its apply here. */
  readonly commitDurations?: DurationSink;
}

/** Plain counters a metrics adapter reads at scrape time. */
export interface RaftNodeStats {
  /** Times this node learned of a leader other than the last one it knew (the first one counts). */
  leaderChanges: number;
}

/** Observers of the node, for checkers, metrics and the admin API. */
export interface RaftNodeEvents {
  onApply?: (entry: Entry) => void;
  onRoleChange?: (role: Role, leader: NodeIdOrNone, term: number) => void;
  onPersisted?: (ready: Ready) => void;
  /**
   * The node hit a broken invariant or lost its disk and stopped for good. A real process
   * must exit (it may not limp on); the simulator records a violation.
   */
  onFatal?: (error: unknown) => void;
}

interface PendingProposal {
  readonly term: number;
  readonly startMs: number;
  readonly resolve: (index: number) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: TimerHandle;
}

interface PendingRead {
  index: number | null;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly timer: TimerHandle;
}

/** A limit on proposals waiting to commit; past it, propose() fails fast. */
const PENDING_PROPOSALS_MAX = 10_000;

export class RaftNode {
  private readonly raft: Raft;
  private readonly storage: RaftStorage;
  private tickTimer: TimerHandle | null = null;
  private processing = false;
  private stopped = false;
  private failure: Error | null = null;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  private nextReadId = 1;
  private lastSnapshotIndex: number;
  /** Index and term of the last entry applied (or of the snapshot restored). */
  private lastApplied: { index: number; term: number };
  private knownLeader: NodeIdOrNone = 0;
  readonly stats: RaftNodeStats = { leaderChanges: 0 };

  private constructor(
    readonly config: RaftNodeConfig,
    private readonly ports: RaftNodePorts,
    raft: Raft,
    storage: RaftStorage,
    snapshotIndex: { index: number; term: number },
    private readonly events: RaftNodeEvents,
  ) {
    this.raft = raft;
    this.storage = storage;
    this.lastSnapshotIndex = snapshotIndex.index;
    this.lastApplied = snapshotIndex;
  }

  /** Loads the durable state from the KV, restores the state machine and starts ticking. */
  static async start(config: RaftNodeConfig, ports: RaftNodePorts, events: RaftNodeEvents = {}): Promise<RaftNode> {
    const storage = new RaftStorage(ports.kv);
    const state = await storage.load();
    if (state.snapshot !== null) ports.stateMachine.restore(state.snapshot.data);
    const raft = new Raft(
      {
        id: config.id,
        voters: [...config.voters],
        observers: [...config.observers],
        electionTicks: config.electionTicks,
        electionJitterTicks: config.electionJitterTicks,
        heartbeatTicks: config.heartbeatTicks,
        maxEntriesPerAppend: config.maxEntriesPerAppend,
        maxBytesPerAppend: config.maxBytesPerAppend,
        maxInflightAppends: config.maxInflightAppends,
        snapshotChunkBytes: config.snapshotChunkBytes,
        preVote: true,
        checkQuorum: true,
        ...(config.bugs === undefined ? {} : { bugs: config.bugs }),
      },
      {
        hardState: state.hardState,
        snapshot: state.snapshot?.meta ?? null,
        ...(state.snapshot === null ? {} : { snapshotData: state.snapshot.data }),
        entries: state.entries,
      },
      { int: (maxExclusive) => ports.rng.int(maxExclusive) },
    );
    const node = new RaftNode(config, ports, raft, storage, { index: state.snapshot?.meta.index ?? 0, term: state.snapshot?.meta.term ?? 0 }, events);
    // Ticks start at a random phase, so nodes that started together do not time out on the
    // same instant (simultaneous candidates split the vote and cost a whole extra timeout).
    node.scheduleTick(1 + ports.rng.int(config.tickMs));
    node.process();
    return node;
  }

  get id(): NodeId {
    return this.config.id;
  }

  get isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  get leader(): NodeIdOrNone {
    return this.raft.leader;
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  /** A message from a peer (the transport calls this). */
  receive(message: Message): void {
    if (this.stopped) return;
    assert.equal(message.to, this.config.id, 'message delivered to the wrong node');
    this.guard(() => { this.raft.step(message); });
    this.process();
  }

  /** Runs a call into the core; an exception there is a broken invariant and fatal. */
  private guard<T>(call: () => T): T {
    try {
      return call();
    } catch (error) {
      this.fatal(error);
      throw error;
    }
  }

  private fatal(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = error instanceof Error ? error : new Error(`non-Error thrown: ${typeof error}`);
    this.stop();
    this.failPending(error);
    this.events.onFatal?.(error);
  }

  /**
   * Appends `data` to the replicated log. Resolves with its index once it is committed and
   * applied here; fails with NOT_CONTROLLER (and the leader's id) when this node does not
   * lead, and with REQUEST_TIMED_OUT when it does not commit in time (it may still commit).
   */
  propose(data: Uint8Array): Promise<number> {
    this.checkRunning();
    if (this.proposals.size >= PENDING_PROPOSALS_MAX) return Promise.reject(new DriftwoodError('REQUEST_TIMED_OUT', `more than ${PENDING_PROPOSALS_MAX} proposals pending`));
    const index = this.guard(() => this.raft.propose(data));
    if (index === null) return Promise.reject(this.notLeader());
    const term = this.raft.term;
    const startMs = this.ports.clock.monotonicMs();
    const promise = new Promise<number>((resolve, reject) => {
      const timer = this.ports.clock.setTimer(this.config.requestTimeoutMs, () => {
        this.proposals.delete(index);
        reject(new DriftwoodError('REQUEST_TIMED_OUT', `entry ${index} did not commit within ${this.config.requestTimeoutMs} ms; it may still commit`, { index }));
      });
      this.proposals.set(index, { term, startMs, resolve, reject, timer });
    });
    this.process();
    return promise;
  }

  /**
   * A linearizable read barrier (ReadIndex, Raft thesis §6.4): resolves once this node, as
   * leader, has confirmed with a quorum that it still leads and has applied everything
   * committed before the read began. Reading the state machine afterwards is linearizable.
   */
  linearizableRead(): Promise<void> {
    this.checkRunning();
    const requestId = this.nextReadId++;
    if (!this.guard(() => this.raft.readIndex(requestId))) return Promise.reject(this.notLeader());
    const promise = new Promise<void>((resolve, reject) => {
      const timer = this.ports.clock.setTimer(this.config.requestTimeoutMs, () => {
        this.reads.delete(requestId);
        reject(new DriftwoodError('REQUEST_TIMED_OUT', `read not confirmed within ${this.config.requestTimeoutMs} ms`));
      });
      this.reads.set(requestId, { index: null, resolve, reject, timer });
    });
    this.process();
    return promise;
  }

  /**
   * Replaces the observers (non-voting members) the core replicates to; see Raft.setObservers
   * for why this needs no log entry. The broker sets them from the registered brokers.
   */
  setObservers(observers: readonly NodeId[]): void {
    if (this.stopped) return;
    this.guard(() => { this.raft.setObservers(observers); });
    this.process();
  }

  /** The current voters and observers. */
  members(): { voters: NodeId[]; observers: NodeId[] } {
    return this.raft.members();
  }

  /** Hands leadership to `to` (controlled shutdown). False when this node does not lead. */
  transferLeadership(to: NodeId): boolean {
    this.checkRunning();
    const started = this.guard(() => this.raft.transferLeadership(to));
    this.process();
    return started;
  }

  /** Stops ticking and processing; pending requests fail. The durable state stays in the KV. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.failPending(new DriftwoodError('NOT_CONTROLLER', `node ${this.config.id} stopped`));
  }

  private scheduleTick(delayMs = this.config.tickMs): void {
    this.tickTimer = this.ports.clock.setTimer(delayMs, () => {
      if (this.stopped) return;
      this.guard(() => { this.raft.tick(); });
      this.process();
      this.scheduleTick();
    });
  }

  /**
   * Drains Ready after Ready, one at a time (the core hands out no new Ready before
   * advance()). A Ready with nothing to persist is handled on the spot, so heartbeats and
   * their answers cost no promise and no trip through the event loop; one that must be
   * persisted first continues when its write completes.
   */
  private process(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      // `stopped` may flip inside afterPersisted (a fatal error): read it through a method.
      while (!this.isStopped() && this.raft.hasReady()) {
        const ready = this.raft.ready();
        if (ready.hardState !== null || ready.entries.length > 0 || ready.snapshot !== null) {
          this.persistThenContinue(ready);
          return;
        }
        this.afterPersisted(ready);
        if (this.snapshotDue()) {
          this.snapshotThenContinue();
          return;
        }
      }
      this.processing = false;
    } catch (error) {
      this.processing = false;
      this.fatal(error);
    }
  }

  private persistThenContinue(ready: Ready): void {
    this.storage.save({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot }).then(
      () => {
        if (this.stopped) return; // crashed while persisting: nothing after the write happens
        this.afterPersisted(ready);
        if (this.snapshotDue()) {
          this.snapshotThenContinue();
          return;
        }
        this.processing = false;
        this.process();
      },
      (error: unknown) => { this.fatal(error); },
    ).catch((error: unknown) => { this.fatal(error); });
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private snapshotDue(): boolean {
    return this.lastApplied.index - this.lastSnapshotIndex >= this.config.snapshotEveryEntries;
  }

  private snapshotThenContinue(): void {
    this.takeSnapshot().then(
      () => {
        this.processing = false;
        this.process();
      },
      (error: unknown) => { this.fatal(error); },
    );
  }

  /** Everything a Ready asks once its state is durable: install, send, apply, advance. */
  private afterPersisted(ready: Ready): void {
    this.events.onPersisted?.(ready);
    if (ready.snapshot !== null) {
      this.ports.stateMachine.restore(ready.snapshot.data);
      this.lastSnapshotIndex = ready.snapshot.meta.index;
      this.lastApplied = { index: ready.snapshot.meta.index, term: ready.snapshot.meta.term };
    }
    if (ready.messages.length > 0) this.ports.transport.send(ready.messages);
    for (const entry of ready.committed) this.apply(entry);
    for (const state of ready.readStates) this.onReadState(state.requestId, state.index);
    if (ready.softState !== null) {
      // An election in progress (no leader) is not a change; the next leader, if another, is.
      const leader = ready.softState.leader;
      if (leader !== 0 && leader !== this.knownLeader) {
        this.stats.leaderChanges += 1;
        this.knownLeader = leader;
      }
      this.events.onRoleChange?.(ready.softState.role, ready.softState.leader, this.raft.term);
    }
    this.guard(() => { this.raft.advance(); });
    this.settleReads();
  }

  private apply(entry: Entry): void {
    assert.ok(entry.index > this.lastApplied.index, `applied index must increase: ${entry.index} after ${this.lastApplied.index}`);
    if (entry.type === 'normal') this.ports.stateMachine.apply(entry);
    this.lastApplied = { index: entry.index, term: entry.term };
    this.events.onApply?.(entry);
    const proposal = this.proposals.get(entry.index);
    if (proposal === undefined) return;
    this.proposals.delete(entry.index);
    proposal.timer.cancel();
    // Another leader's entry took this index: ours was never committed.
    if (entry.term === proposal.term) {
      this.ports.commitDurations?.observeMs(this.ports.clock.monotonicMs() - proposal.startMs);
      proposal.resolve(entry.index);
    }
    else proposal.reject(new DriftwoodError('NOT_CONTROLLER', `entry ${entry.index} was replaced by a newer leader's; it did not commit`, { leaderId: this.raft.leader }));
  }

  private onReadState(requestId: number, index: number): void {
    const read = this.reads.get(requestId);
    if (read !== undefined) read.index = index;
  }

  private settleReads(): void {
    const applied = this.raft.appliedIndex;
    for (const [id, read] of this.reads) {
      if (read.index === null || read.index > applied) continue;
      this.reads.delete(id);
      read.timer.cancel();
      read.resolve();
    }
  }

  /** Snapshots the applied state, compacts the core's log and the stored one. */
  private async takeSnapshot(): Promise<void> {
    const applied = this.lastApplied.index;
    const data = this.ports.stateMachine.snapshot();
    this.guard(() => { this.raft.compact(applied, data); });
    await this.storage.saveOwnSnapshot(this.currentSnapshot(applied, data));
    this.lastSnapshotIndex = applied;
  }

  private currentSnapshot(index: number, data: Uint8Array): Snapshot {
    assert.equal(index, this.lastApplied.index, 'a snapshot is taken of exactly what was applied');
    // The observers of now, not of the start: they change as brokers join (setObservers).
    const meta = { index, term: this.lastApplied.term, ...this.raft.members() };
    return { meta, data };
  }

  private notLeader(): DriftwoodError {
    const leaderId = this.raft.leader;
    return new DriftwoodError('NOT_CONTROLLER', leaderId === 0 ? 'no leader is known yet' : `node ${leaderId} leads`, { leaderId });
  }

  private checkRunning(): void {
    if (this.failure !== null) throw this.failure;
    if (this.stopped) throw new DriftwoodError('NOT_CONTROLLER', `node ${this.config.id} stopped`);
  }

  private failPending(error: unknown): void {
    for (const proposal of this.proposals.values()) { proposal.timer.cancel(); proposal.reject(error); }
    this.proposals.clear();
    for (const read of this.reads.values()) { read.timer.cancel(); read.reject(error); }
    this.reads.clear();
  }
}
