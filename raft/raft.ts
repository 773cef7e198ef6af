// The Raft state machine, in the style of etcd's raft.go and rawnode.go: no timers, sockets,
// disk or clock. The driver calls tick() every heartbeat interval, step() with every message
// that arrives, and drains ready()/advance() to persist, send and apply (see Ready in
// types.ts for the order). Everything time-related is counted in ticks; the only randomness,
// the election timeout jitter, comes from the RaftRng port.
//
// Roles and their transitions:
//
//   follower --(election timeout, preVote)--> preCandidate --(majority of pre-votes)--> candidate
//   follower --(election timeout, no preVote, or timeoutNow)-----------------------------^
//   candidate --(majority of votes)--> leader
//   any --(message of a higher term; a leader of the same term; lost election; check-quorum
//          failure)--> follower
//   observer: stays an observer; it follows the leader's log but never votes or campaigns.
//
// The persistence contract (etcd's): every message a step produces goes into the next Ready,
// together with any hard state and entries changed up to that moment, and the driver
// persists those before it sends the messages. So a vote or an append acknowledgement can
// only leave after the vote or the entries it acknowledges are durable. The leader counts its
// own entries towards a commit only once the driver persisted them (advance()).
import assert from 'node:assert/strict';
import { RaftLog, type HandoffMark } from './log.js';
import { quorumIndex, quorumSize, voteResult } from './quorum.js';
import { pendingReadsMax, ReadOnly } from './read-only.js';
import { Replication } from './replication.js';
import { sameSnapshot, SnapshotAssembly } from './snapshot-transfer.js';
import type {
  Entry,
  HardState,
  Message,
  MessageBody,
  NodeId,
  NodeIdOrNone,
  RaftBug,
  RaftRng,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from './types.js';

export type { RaftBug, RaftRng } from './types.js';

export interface RaftConfig {
  id: NodeId;
  /** The static voter set from the shared peers list. */
  voters: NodeId[];
  /** Non-voting members that replicate the log (may be empty); changeable by setObservers(). */
  observers: NodeId[];
  /** e.g. 10; the randomized timeout is in [electionTicks, electionTicks + electionJitterTicks). */
  electionTicks: number;
  /**
   * The spread of the randomized timeout; default electionTicks (etcd's [T, 2T)). A smaller
   * spread elects sooner after a leader is lost (with N voters the first timeout is the
   * minimum of N-1 draws) at the cost of more split votes, which pre-vote keeps cheap.
   */
  electionJitterTicks?: number;
  /** e.g. 1. */
  heartbeatTicks: number;
  maxEntriesPerAppend: number;
  maxBytesPerAppend: number;
  /** Per follower pipelining window. */
  maxInflightAppends: number;
  snapshotChunkBytes: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Deliberate bugs for the simulator's checkers to catch; default none. */
  bugs?: ReadonlySet<RaftBug>;
}

/** What the driver loaded from durable storage at start. */
export interface RaftState {
  hardState: HardState;
  /** The last snapshot (the log starts after it). */
  snapshot: SnapshotMeta | null;
  /**
   * The last snapshot's data, so that this node can send it to a lagging follower once it
   * leads. Without it, a leader whose log was compacted cannot catch such a follower up until
   * the driver calls compact() again (compact(snapshot.index, data) restores it).
   */
  snapshotData?: Uint8Array;
  /** Durable log entries after the snapshot. */
  entries: Entry[];
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeIdOrNone;
  commit: number;
  applied: number;
  lastIndex: number;
  lastTerm: number;
  progress?: Record<NodeId, ProgressStatus>;
}

/** A limit on committed entries handed out in one Ready; the rest follow in the next. */
export const committedPerReadyMax = 1024;

type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;
type CampaignKind = 'preVote' | 'vote' | 'transfer';

/** What the outstanding Ready handed out, for advance() to acknowledge. */
interface Outstanding {
  readonly mark: HandoffMark | null;
  readonly applyingTo: number;
}

const noBugs: ReadonlySet<RaftBug> = new Set();
/** A candidate waits at least this many ticks for its votes before trying again. */
const CANDIDATE_BACKOFF_TICKS_MIN = 2;

export class Raft {
  readonly id: NodeId;
  private readonly config: RaftConfig;
  private readonly voters: readonly NodeId[];
  private observers: readonly NodeId[];
  private readonly isVoter: boolean;
  private readonly rng: RaftRng;
  private readonly bugs: ReadonlySet<RaftBug>;
  private readonly log: RaftLog;

  private termValue: number;
  private voteValue: NodeIdOrNone;
  private roleValue: Role;
  private leaderValue: NodeIdOrNone = 0;

  /**
   * Ticks since we last heard from a leader (follower), or since the last check-quorum round
   * (leader). Also the basis of the leader lease that makes followers ignore disruptive votes.
   */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** Candidate and pre-candidate: the answers so far. */
  private readonly votes = new Map<NodeId, boolean>();
  /** Leader: the followers' progress and what to send them. */
  private replication: Replication | null = null;
  /** Leader: the voter leadership is being handed to, or 0. */
  private transferee: NodeIdOrNone = 0;
  private transferElapsed = 0;
  private readonly readOnly = new ReadOnly();

  /** The latest snapshot with its data, sent to followers that need compacted entries. */
  private snapshot: Snapshot | null;
  /** Follower: the snapshot being received chunk by chunk. */
  private incoming: SnapshotAssembly | null = null;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private lastHardState: HardState;
  private lastSoftState: SoftState;
  private outstanding: Outstanding | null = null;

  constructor(config: RaftConfig, state: RaftState, rng: RaftRng) {
    validateConfig(config);
    this.id = config.id;
    this.config = config;
    this.voters = [...config.voters];
    this.observers = [...config.observers];
    this.isVoter = this.voters.includes(config.id);
    this.rng = rng;
    this.bugs = config.bugs ?? noBugs;

    const hs = state.hardState;
    assert(Number.isSafeInteger(hs.term) && hs.term >= 0, `bad term ${hs.term}`);
    assert(hs.vote === 0 || this.voters.includes(hs.vote), `vote for ${hs.vote}, not a voter`);
    this.log = new RaftLog(state.snapshot, state.entries, hs.commit);
    this.termValue = hs.term;
    this.voteValue = hs.vote;
    this.snapshot = state.snapshot !== null && state.snapshotData !== undefined ? { meta: state.snapshot, data: state.snapshotData } : null;
    this.roleValue = this.isVoter ? 'follower' : 'observer';
    this.lastHardState = this.hardState();
    this.becomeFollower(hs.term, 0);
    this.lastSoftState = this.softState();
  }

  // --- introspection ---

  get role(): Role {
    return this.roleValue;
  }

  get term(): number {
    return this.termValue;
  }

  get leader(): NodeIdOrNone {
    return this.leaderValue;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  get appliedIndex(): number {
    return this.log.applied;
  }

  get lastIndex(): number {
    return this.log.lastIndex();
  }

  status(): RaftStatus {
    const status: RaftStatus = {
      id: this.id,
      role: this.roleValue,
      term: this.termValue,
      leader: this.leaderValue,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
    };
    if (this.roleValue !== 'leader') return status;
    const progress: Record<NodeId, ProgressStatus> = {};
    progress[this.id] = { match: this.log.persisted, next: this.log.lastIndex() + 1, state: 'replicate', recentActive: true };
    for (const [id, pr] of this.leading().entries()) {
      progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive };
    }
    status.progress = progress;
    return status;
  }

  // --- the driver's inputs ---

  tick(): void {
    if (this.roleValue === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Steps a message from a peer. Stale, foreign or misaddressed messages are ignored. */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id || !this.isMember(m.from)) return;
    if (!Number.isSafeInteger(m.term) || m.term < 0) return;
    // Observers take no part in elections: a vote request reaching one is a peer's mistake,
    // and letting it bump our term would only disrupt the leader.
    if (!this.isVoter && (m.type === 'vote' || m.type === 'preVote')) return;
    if (!this.stepTerm(m)) return;
    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.roleValue) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'preCandidate':
      case 'candidate':
        this.stepCandidate(m);
        return;
      case 'follower':
      case 'observer':
        this.stepFollower(m);
        return;
    }
  }

  /** Leader only: appends a normal entry and returns its index; null otherwise. */
  propose(data: Uint8Array): number | null {
    if (this.roleValue !== 'leader' || this.transferee !== 0) return null;
    const index = this.appendEntry('normal', data);
    this.leading().bcastAppend();
    return index;
  }

  /**
   * Requests a linearizable read (see read-only.ts for why ReadIndex and not a lease). The
   * answer comes as a Ready.readStates entry once a majority confirmed this leader; it is
   * dropped if the leader loses its role first. requestId: a positive integer unique among
   * the pending reads. False if not leader, or too many reads are pending.
   */
  readIndex(requestId: number): boolean {
    assert(Number.isSafeInteger(requestId) && requestId > 0, `read request id must be a positive integer, got ${requestId}`);
    if (this.roleValue !== 'leader') return false;
    if (this.readOnly.size >= pendingReadsMax) return false;
    if (this.log.term(this.log.committed) !== this.termValue) this.readOnly.defer(requestId);
    else this.startRead(requestId);
    return true;
  }

  /**
   * Leader only: hands leadership to voter `to` (Raft thesis §3.10). Proposals stop; once
   * `to` holds our whole log (we append to it first if needed) we send it timeoutNow and it
   * campaigns at once, its vote requests bypassing the other voters' stickiness. The transfer
   * is abandoned after electionTicks. True if a transfer to `to` is under way.
   */
  transferLeadership(to: NodeId): boolean {
    if (this.roleValue !== 'leader' || to === this.id || !this.voters.includes(to)) return false;
    if (this.transferee === to) return true;
    this.transferee = to;
    this.transferElapsed = 0;
    const replication = this.leading();
    const pr = replication.peer(to);
    if (pr.match === this.log.lastIndex()) this.send(to, { type: 'timeoutNow' });
    else replication.sendAppend(to, pr, true);
    return true;
  }

  /**
   * The driver took a snapshot of the applied state at snapshotIndex: entries up to it are
   * dropped, and the snapshot is what followers that need them receive. A snapshot older
   * than the one we hold (say one received from the leader meanwhile) is ignored.
   */
  compact(snapshotIndex: number, data: Uint8Array): void {
    assert(snapshotIndex <= this.log.applied, `compact(${snapshotIndex}) beyond the applied index ${this.log.applied}`);
    if (snapshotIndex < this.log.firstIndex() - 1) return;
    const term = this.log.term(snapshotIndex);
    assert(term !== undefined);
    this.log.compact(snapshotIndex);
    this.snapshot = { meta: { index: snapshotIndex, term, voters: [...this.voters], observers: [...this.observers] }, data };
  }

  /**
   * Replaces the non-voting members. An observer never counts towards a quorum (elections,
   * commits, check-quorum and read confirmation count voters only), so adding or removing one
   * changes no majority and needs no configuration change through the log: the Raft thesis
   * (§4.2.1) adds new servers as non-voting members for exactly this reason, to catch up
   * without affecting availability. Each node's driver sets the list from its own view of the
   * cluster (the brokers registered in the metadata), which may lag; a lagging list only
   * delays replication to a newcomer. A leader starts probing an added observer at once and
   * forgets a removed one; a node that is itself an observer stays in its own list.
   */
  setObservers(observers: readonly NodeId[]): void {
    const next = [...new Set(observers)];
    assert.equal(next.length, observers.length, 'observers named twice');
    for (const id of next) {
      assert(Number.isSafeInteger(id) && id > 0, `observer id must be a positive integer, got ${id}`);
      assert(!this.voters.includes(id), `node ${id} is a voter, not an observer`);
    }
    assert(this.isVoter || next.includes(this.id), `observer ${this.id} cannot remove itself`);
    const previous = this.observers;
    this.observers = next;
    if (this.roleValue !== 'leader') return;
    const replication = this.leading();
    for (const id of previous) if (!next.includes(id)) replication.removeFollower(id);
    for (const id of next) if (!previous.includes(id)) replication.addFollower({ id, isVoter: false });
  }

  /** The current voters and observers (what a snapshot taken now records). */
  members(): { voters: NodeId[]; observers: NodeId[] } {
    return { voters: [...this.voters], observers: [...this.observers] };
  }

  // --- Ready / advance ---

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnhanded() ||
      this.log.hasNextCommitted() ||
      !sameHardState(this.hardState(), this.lastHardState) ||
      !sameSoftState(this.softState(), this.lastSoftState)
    );
  }

  ready(): Ready {
    assert(this.outstanding === null, 'ready() called again before advance()');
    const softState = this.takeSoftState();
    const messages = this.msgs;
    const readStates = this.readStates;
    this.msgs = [];
    this.readStates = [];
    if (this.bugs.has('raft-ack-before-persist') && this.hasStateToPersist() && messages.some(isAcknowledgement)) {
      // Deliberate bug: the acknowledgements leave now, the state they acknowledge one Ready
      // later. A crash in between forgets a vote or entries the peers were told about.
      this.outstanding = { mark: null, applyingTo: this.log.applied };
      return { hardState: null, entries: [], snapshot: null, committed: [], messages, readStates, softState };
    }
    const hs = this.hardState();
    assert(hs.term >= this.lastHardState.term, `term regressed from ${this.lastHardState.term} to ${hs.term}`);
    assert(hs.commit >= this.lastHardState.commit, `commit regressed from ${this.lastHardState.commit} to ${hs.commit}`);
    assert(hs.commit <= this.log.lastIndex(), `commit ${hs.commit} beyond the last index ${this.log.lastIndex()}`);
    const hardState = sameHardState(hs, this.lastHardState) ? null : hs;
    this.lastHardState = hs;
    const snapshot = this.log.unhandedSnapshot();
    const entries = this.log.unhandedEntries();
    const mark = this.log.handOut();
    const committed = this.log.nextCommitted(committedPerReadyMax);
    const lastCommitted = committed.at(-1);
    if (lastCommitted !== undefined) this.log.applyingTo(lastCommitted.index);
    this.outstanding = { mark, applyingTo: this.log.applyingTarget };
    return { hardState, entries, snapshot, committed, messages, readStates, softState };
  }

  advance(): void {
    const outstanding = this.outstanding;
    assert(outstanding !== null, 'advance() without a Ready');
    this.outstanding = null;
    if (outstanding.mark !== null) this.log.markPersisted(outstanding.mark);
    this.log.appliedTo(outstanding.applyingTo);
    // The leader's own entries now count towards a commit (its match is the durable prefix).
    if (this.roleValue === 'leader') this.afterMatchChanged();
  }

  // --- terms and elections ---

  /**
   * Handles the message's term. Returns false when the message is to be dropped.
   *
   * A higher term normally makes us a follower in it. Two exceptions keep live clusters
   * stable: a pre-vote never changes our term (it is a question, not a claim), and a (pre-)vote
   * request that reaches us while we hear from a live leader is ignored outright, term
   * included (leader stickiness, thesis §4.2.3): otherwise a node that was partitioned away
   * would depose a healthy leader on its return.
   */
  private stepTerm(m: Message): boolean {
    if (m.term > this.termValue) {
      if ((m.type === 'vote' || m.type === 'preVote') && this.inLease(m)) return false;
      const keepsTerm = m.type === 'preVote' || (m.type === 'preVoteResponse' && m.granted);
      if (!keepsTerm) this.becomeFollower(m.term, isFromLeader(m) ? m.from : 0);
      return true;
    }
    if (m.term < this.termValue) {
      this.answerStale(m);
      return false;
    }
    return true;
  }

  /**
   * A message from an older term. A leader or pre-candidate stuck in an old term must learn
   * the new one: with check-quorum or pre-vote we do not bump terms on vote requests, so a
   * rejoining node could otherwise never catch up. We answer an old leader's append or
   * heartbeat with our term (it steps down) and an old pre-vote with a rejection.
   */
  private answerStale(m: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
      this.send(m.from, { type: 'appendResponse', success: false, index: 0, hintIndex: 0, hintTerm: 0 });
    } else if (m.type === 'preVote') {
      this.send(m.from, { type: 'preVoteResponse', granted: false });
    }
  }

  /**
   * Leader stickiness: we heard from a leader within the (non-randomized) election timeout,
   * so a (pre-)vote request is a disruption, not a recovery; a leadership transfer bypasses
   * it. For votes the lease holds only with check-quorum, as in etcd: without check-quorum a
   * leader that lost its majority never steps down, and a follower it still reaches must
   * remain able to vote it out. A pre-vote is refused whenever a leader is live (thesis §9.6).
   */
  private inLease(m: MessageOf<'vote'> | MessageOf<'preVote'>): boolean {
    if (m.type === 'vote' && m.transfer) return false;
    if (m.type === 'vote' && !this.config.checkQuorum) return false;
    return this.leaderValue !== 0 && this.electionElapsed < this.config.electionTicks;
  }

  private handleVoteRequest(m: MessageOf<'vote'> | MessageOf<'preVote'>): void {
    const isPre = m.type === 'preVote';
    const canVote =
      // a repeat of the vote we cast...
      this.voteValue === m.from ||
      // ...or we have not voted and know of no leader in this term...
      (this.voteValue === 0 && this.leaderValue === 0) ||
      // ...or a pre-vote for a future term (no vote is cast by granting it)...
      (isPre && m.term > this.termValue) ||
      // ...or, with the deliberate bug, a second vote in the same term.
      (!isPre && this.bugs.has('raft-vote-twice') && this.roleValue === 'follower');
    const type = isPre ? 'preVoteResponse' : 'voteResponse';
    if (!canVote || !this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send(m.from, { type, granted: false });
      return;
    }
    // The answer carries the request's term: for a pre-vote that is the candidate's future
    // term, which it would otherwise drop as stale; for a vote it equals ours by now.
    this.send(m.from, { type, granted: true }, m.term);
    if (!isPre) {
      this.voteValue = m.from;
      this.electionElapsed = 0;
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (!this.isVoter || this.electionElapsed < this.randomizedElectionTimeout) return;
    this.electionElapsed = 0;
    this.campaign(this.config.preVote ? 'preVote' : 'vote');
  }

  private campaign(kind: CampaignKind): void {
    assert(this.isVoter, 'an observer never campaigns');
    assert.notEqual(this.roleValue, 'leader');
    if (kind === 'preVote') this.becomePreCandidate();
    else this.becomeCandidate();
    // Our own vote: a real vote for ourselves is already in the hard state.
    if (this.poll(this.id, true)) return;
    const term = kind === 'preVote' ? this.termValue + 1 : this.termValue;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      if (kind === 'preVote') this.send(id, { type: 'preVote', lastIndex, lastTerm }, term);
      else this.send(id, { type: 'vote', lastIndex, lastTerm, transfer: kind === 'transfer' }, term);
    }
  }

  /** Records a (pre-)vote answer; returns true once the election is decided. */
  private poll(from: NodeId, granted: boolean): boolean {
    if (!this.voters.includes(from) || this.votes.has(from)) return false;
    this.votes.set(from, granted);
    const result = voteResult(this.voters, this.votes);
    if (result === 'pending') return false;
    if (result === 'lost') this.becomeFollower(this.termValue, 0);
    else if (this.roleValue === 'preCandidate') this.campaign('vote');
    else this.becomeLeader();
    return true;
  }

  // --- role transitions ---

  /** Resets the per-term and per-role state; a new term clears the vote. */
  private reset(term: number): void {
    assert(term >= this.termValue, `term would go back from ${this.termValue} to ${term}`);
    if (term !== this.termValue) {
      this.termValue = term;
      this.voteValue = 0;
      // A snapshot half received from an older term's leader will not be completed.
      this.incoming = null;
    }
    this.leaderValue = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const jitter = this.config.electionJitterTicks ?? this.config.electionTicks;
    this.randomizedElectionTimeout = this.config.electionTicks + this.rng.int(jitter);
    assert(Number.isSafeInteger(this.randomizedElectionTimeout));
    assert(this.randomizedElectionTimeout >= this.config.electionTicks && this.randomizedElectionTimeout < this.config.electionTicks + jitter);
    this.votes.clear();
    this.replication = null;
    this.transferee = 0;
    this.transferElapsed = 0;
    this.readOnly.reset();
  }

  private becomeFollower(term: number, leader: NodeIdOrNone): void {
    this.reset(term);
    this.roleValue = this.isVoter ? 'follower' : 'observer';
    this.leaderValue = leader;
  }

  private becomePreCandidate(): void {
    // The term and the vote stay: a pre-vote round changes nothing durable.
    this.reset(this.termValue);
    this.roleValue = 'preCandidate';
  }

  private becomeCandidate(): void {
    this.reset(this.termValue + 1);
    this.voteValue = this.id;
    this.roleValue = 'candidate';
    // A lost round (a split vote) is retried after a short random backoff, not a whole
    // election timeout, as KRaft's election backoff does: the vote's answers arrive within
    // a few ticks, and waiting longer only keeps the cluster leaderless.
    this.randomizedElectionTimeout = CANDIDATE_BACKOFF_TICKS_MIN + this.rng.int(Math.max(1, Math.ceil((this.config.electionJitterTicks ?? this.config.electionTicks) / 2)));
  }

  private becomeLeader(): void {
    assert.equal(this.roleValue, 'candidate');
    this.reset(this.termValue);
    this.roleValue = 'leader';
    this.leaderValue = this.id;
    const followers = [...this.voters, ...this.observers].filter((id) => id !== this.id).map((id) => ({ id, isVoter: this.voters.includes(id) }));
    this.replication = new Replication(this.log, this.config, followers, (to, body) => {
      this.send(to, body);
    }, () => this.snapshot);
    // The noop lets the leader commit an entry of its own term, which commits (and tells it
    // the commit index of) everything before it (Raft §5.4.2, thesis §6.4).
    this.appendEntry('noop', new Uint8Array(0));
    this.leading().bcastAppend();
  }

  // --- follower ---

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.electionElapsed = 0;
        this.leaderValue = m.from;
        this.handleFromLeader(m);
        return;
      case 'timeoutNow':
        // A transfer never uses pre-vote: the leader asked, so no partition is healing.
        if (this.isVoter) this.campaign('transfer');
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader won this term (m.term === our term here).
        this.becomeFollower(this.termValue, m.from);
        this.handleFromLeader(m);
        return;
      case 'preVoteResponse':
        if (this.roleValue === 'preCandidate') this.poll(m.from, m.granted);
        return;
      case 'voteResponse':
        if (this.roleValue === 'candidate') this.poll(m.from, m.granted);
        return;
      default:
        return;
    }
  }

  private handleFromLeader(m: MessageOf<'append'> | MessageOf<'heartbeat'> | MessageOf<'snapshot'>): void {
    if (m.type === 'append') this.handleAppend(m);
    else if (m.type === 'heartbeat') this.handleHeartbeat(m);
    else this.handleSnapshot(m);
  }

  private handleAppend(m: MessageOf<'append'>): void {
    const committed = this.log.committed;
    if (m.prevIndex < committed) {
      // Everything up to our commit index matches the leader's log already.
      this.replyAppended(m.from, committed);
      return;
    }
    const lastNewIndex = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNewIndex !== null) {
      // Only entries this append vouched for may be committed: beyond lastNewIndex our log
      // may still hold a stale tail the leader has not examined.
      this.log.commitTo(Math.min(m.commit, lastNewIndex));
      this.replyAppended(m.from, lastNewIndex);
      return;
    }
    // Our log does not hold (prevIndex, prevTerm). Hint the largest index at which the logs
    // may match: the leader's entries up to prevIndex have terms <= prevTerm, so none of ours
    // with a greater term can match (see findConflictByTerm).
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    this.send(m.from, { type: 'appendResponse', success: false, index: m.prevIndex, hintIndex: hint.index, hintTerm: hint.term });
  }

  private replyAppended(to: NodeId, index: number): void {
    this.send(to, { type: 'appendResponse', success: true, index, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(m: MessageOf<'heartbeat'>): void {
    // The leader sends min(our match, its commit), so our log holds these entries.
    this.log.commitTo(m.commit);
    this.send(m.from, { type: 'heartbeatResponse', context: m.context });
  }

  /**
   * A chunk of the leader's snapshot. A snapshot we do not need (our commit index is already
   * past it, or our log holds its last entry) is answered as done at the first chunk, without
   * the transfer. Otherwise chunks are assembled in order and the snapshot, once complete,
   * replaces our whole log: anything we hold beyond our commit index is not known to match.
   */
  private handleSnapshot(m: MessageOf<'snapshot'>): void {
    if (m.offset === 0) {
      if (this.snapshotNotNeeded(m.meta)) {
        this.incoming = null;
        this.send(m.from, { type: 'snapshotResponse', offset: 0, done: true, rejected: false });
        this.replyAppended(m.from, this.log.committed);
        return;
      }
      this.incoming = new SnapshotAssembly(m.meta);
    }
    const incoming = this.incoming;
    if (incoming === null || !incoming.accepts(m.meta, m.offset)) {
      const expected = incoming !== null && sameSnapshot(incoming.meta, m.meta) ? incoming.offset : 0;
      this.send(m.from, { type: 'snapshotResponse', offset: expected, done: false, rejected: true });
      return;
    }
    incoming.add(m.chunk);
    if (!m.done) {
      this.send(m.from, { type: 'snapshotResponse', offset: incoming.offset, done: false, rejected: false });
      return;
    }
    this.incoming = null;
    if (!this.snapshotNotNeeded(m.meta)) {
      const snapshot = incoming.snapshot();
      this.log.restore(snapshot);
      this.snapshot = snapshot;
    }
    this.send(m.from, { type: 'snapshotResponse', offset: incoming.offset, done: true, rejected: false });
    this.replyAppended(m.from, this.log.committed);
  }

  /** True (after committing up to it if our log holds it) when we need not install meta. */
  private snapshotNotNeeded(meta: SnapshotMeta): boolean {
    if (meta.index <= this.log.committed) return true;
    if (!this.log.matchTerm(meta.index, meta.term)) return false;
    // Our log holds the snapshot's last entry, hence (log matching) everything before it; the
    // snapshot covers only committed entries, so we may commit up to it and keep our log.
    this.log.commitTo(meta.index);
    return true;
  }

  // --- leader ---

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.transferee !== 0 && ++this.transferElapsed >= this.config.electionTicks) {
      // The transferee did not take over in time: resume accepting proposals.
      this.transferee = 0;
      this.transferElapsed = 0;
    }
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.checkQuorum()) return;
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.leading().bcastHeartbeat(0);
    }
  }

  /**
   * Check-quorum: a leader that has not heard from a majority of voters within an election
   * timeout steps down. It may be partitioned away, and the majority may have elected a new
   * leader already; stepping down stops it from serving as leader to whoever still reaches it.
   * Returns whether we are still the leader.
   */
  private checkQuorum(): boolean {
    if (this.leading().activeVotersThenReset() >= quorumSize(this.voters.length)) return true;
    this.becomeFollower(this.termValue, 0);
    return false;
  }

  private stepLeader(m: Message): void {
    const replication = this.leading();
    const pr = replication.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appendResponse':
        // Our log only grows within our term: an acknowledgement beyond it is not ours to trust.
        if (m.index > this.log.lastIndex()) return;
        pr.recentActive = true;
        if (!m.success) {
          replication.onRejected(m.from, pr, m);
        } else if (replication.onAcknowledged(pr, m.index)) {
          this.afterMatchChanged();
          // Acknowledgements may have opened the window: fill it.
          replication.fill(m.from, pr);
          if (this.transferee === m.from && pr.match === this.log.lastIndex()) this.send(m.from, { type: 'timeoutNow' });
        }
        return;
      case 'heartbeatResponse':
        replication.onHeartbeatResponse(m.from, pr);
        if (m.context !== 0 && pr.isVoter) this.confirmRead(m.from, m.context);
        return;
      case 'snapshotResponse':
        pr.recentActive = true;
        replication.onSnapshotResponse(m.from, pr, m);
        return;
      default:
        // Another leader in our term cannot exist; vote answers are late; ignore the rest.
        return;
    }
  }

  /** A match index changed (a follower's, or ours in advance()): maybe commit and tell. */
  private afterMatchChanged(): void {
    if (!this.maybeCommit()) return;
    this.releaseDeferredReads();
    this.leading().bcastAppend();
  }

  /** A voter answered the heartbeat round of read requestId. */
  private confirmRead(from: NodeId, requestId: number): void {
    if (this.readOnly.recvAck(from, requestId) < quorumSize(this.voters.length)) return;
    for (const read of this.readOnly.release(requestId)) this.readStates.push(read);
  }

  /** Commits the highest index a majority of voters hold, if it is of our term. */
  private maybeCommit(): boolean {
    const replication = this.leading();
    const matches = this.voters.map((id) => (id === this.id ? this.log.persisted : replication.peer(id).match));
    const index = quorumIndex(matches);
    if (index <= this.log.committed) return false;
    // Raft §5.4.2 (Figure 8): an entry of an older term may be on a majority and still be
    // overwritten by a later leader; only counting entries of our own term is safe, and
    // committing one commits everything before it.
    if (this.log.term(index) !== this.termValue && !this.bugs.has('raft-commit-old-term')) return false;
    return this.log.commitTo(index);
  }

  private appendEntry(type: Entry['type'], data: Uint8Array): number {
    assert.equal(this.roleValue, 'leader');
    const index = this.log.lastIndex() + 1;
    const lastIndex = this.log.append([{ index, term: this.termValue, type, data }]);
    assert.equal(lastIndex, index, 'a leader only ever appends to its log');
    return index;
  }

  private startRead(requestId: number): void {
    const index = this.log.committed;
    if (this.voters.length === 1) {
      this.readStates.push({ requestId, index });
      return;
    }
    this.readOnly.add(requestId, index, this.id);
    this.leading().bcastHeartbeat(requestId);
  }

  private releaseDeferredReads(): void {
    if (this.log.term(this.log.committed) !== this.termValue) return;
    for (const requestId of this.readOnly.takeDeferred()) this.startRead(requestId);
  }

  // --- helpers ---

  /** The leader's replication state; asserts we are the leader. */
  private leading(): Replication {
    const replication = this.replication;
    assert(replication !== null && this.roleValue === 'leader', 'not the leader');
    return replication;
  }

  private isMember(id: NodeId): boolean {
    return this.voters.includes(id) || this.observers.includes(id);
  }

  private send(to: NodeId, body: MessageBody, term = this.termValue): void {
    assert.notEqual(to, this.id);
    this.msgs.push({ ...body, from: this.id, to, term });
  }

  private hardState(): HardState {
    return { term: this.termValue, vote: this.voteValue, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { leader: this.leaderValue, role: this.roleValue };
  }

  private takeSoftState(): SoftState | null {
    const soft = this.softState();
    if (sameSoftState(soft, this.lastSoftState)) return null;
    this.lastSoftState = soft;
    return soft;
  }

  private hasStateToPersist(): boolean {
    return this.log.hasUnhanded() || !sameHardState(this.hardState(), this.lastHardState);
  }
}

function isFromLeader(m: Message): boolean {
  return m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
}

/** Messages that vouch for durable state: what ack-before-persist hands out too early. */
function isAcknowledgement(m: Message): boolean {
  return (m.type === 'voteResponse' && m.granted) || (m.type === 'appendResponse' && m.success);
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function validateConfig(config: RaftConfig): void {
  const positive = (name: string, value: number): void => {
    assert(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
  };
  positive('id', config.id);
  for (const id of [...config.voters, ...config.observers]) positive('member id', id);
  assert(config.voters.length > 0, 'at least one voter');
  const members = new Set([...config.voters, ...config.observers]);
  assert.equal(members.size, config.voters.length + config.observers.length, 'voters and observers must be distinct');
  assert(members.has(config.id), `node ${config.id} is neither a voter nor an observer`);
  positive('electionTicks', config.electionTicks);
  if (config.electionJitterTicks !== undefined) positive('electionJitterTicks', config.electionJitterTicks);
  positive('heartbeatTicks', config.heartbeatTicks);
  assert(config.heartbeatTicks < config.electionTicks, 'heartbeatTicks must be below electionTicks');
  positive('maxEntriesPerAppend', config.maxEntriesPerAppend);
  positive('maxBytesPerAppend', config.maxBytesPerAppend);
  positive('maxInflightAppends', config.maxInflightAppends);
  positive('snapshotChunkBytes', config.snapshotChunkBytes);
}
