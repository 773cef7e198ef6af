// One consumer group under Kafka's classic protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), as the Kafka listener will serve it (issue 11). Unlike src/group/group.ts
// (KIP-848: the coordinator assigns), here the group elects a leader member that computes
// the assignment itself and hands it back, opaque, through SyncGroup. Stop-the-world: a
// rebalance waits until every member has joined again (or the rebalance timeout drops the
// ones that did not), bumps the generation, answers every join, then waits for the
// leader's SyncGroup to answer every member with its assignment.
//
// Pure: no timers. Time comes in as arguments; the owner calls tick() at nextDeadlineMs().
// Joins and syncs that must wait are answered later through the promises they return.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';

export interface ClassicProtocol {
  readonly name: string;
  readonly metadata: Buffer;
}

export interface ClassicJoinRequest {
  /** '' for a member joining for the first time. */
  readonly memberId: string;
  readonly clientId: string;
  readonly clientHost: string;
  readonly protocolType: string;
  /** In the member's order of preference. */
  readonly protocols: readonly ClassicProtocol[];
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  /** JoinGroup v4+: a new member first gets its id through MEMBER_ID_REQUIRED, then joins with it. */
  readonly requireKnownMemberId: boolean;
}

export interface ClassicJoinAnswer {
  readonly generationId: number;
  readonly protocolType: string;
  readonly protocolName: string;
  readonly leader: string;
  readonly memberId: string;
  /** Every member with its metadata for the chosen protocol; empty for all but the leader. */
  readonly members: ReadonlyArray<{ readonly memberId: string; readonly metadata: Buffer }>;
}

/** A deliberate defect the cluster simulator must catch (`driftwood sim --bug`); never set otherwise. */
export type ClassicGroupBug = 'classic-forget-generation';

export interface ClassicGroupLimits {
  /** Defects for the simulator only. */
  readonly bugs?: ReadonlySet<ClassicGroupBug>;
  readonly membersMax: number;
  readonly sessionTimeoutMsMin: number;
  readonly sessionTimeoutMsMax: number;
  /** A new group waits this long for more members before its first generation (group.initial.rebalance.delay.ms). */
  readonly initialRebalanceDelayMs: number;
  readonly protocolsPerMemberMax: number;
  readonly protocolMetadataBytesMax: number;
  readonly assignmentBytesMax: number;
}

/** Kafka's broker defaults, except the initial delay (3 s there): a test cluster's groups form sooner. */
export const defaultClassicGroupLimits: ClassicGroupLimits = {
  membersMax: 1000,
  sessionTimeoutMsMin: 1000,
  sessionTimeoutMsMax: 1_800_000,
  initialRebalanceDelayMs: 1000,
  protocolsPerMemberMax: 16,
  protocolMetadataBytesMax: 64 * 1024,
  assignmentBytesMax: 1024 * 1024,
};

/** Kafka's names for the states (DescribeGroups shows them). */
export type ClassicGroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export const classicGroupStates: readonly ClassicGroupState[] = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable'];

/** A group as __consumer_offsets keeps it (JSON: bytes as base64). */
export interface PersistedClassicGroup {
  readonly state: ClassicGroupState;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocol: string | null;
  readonly leader: string | null;
  readonly members: ReadonlyArray<{
    readonly memberId: string;
    readonly clientId: string;
    readonly clientHost: string;
    readonly sessionTimeoutMs: number;
    readonly rebalanceTimeoutMs: number;
    readonly protocols: ReadonlyArray<{ readonly name: string; readonly metadata: string }>;
    readonly assignment: string;
  }>;
}

interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: DriftwoodError) => void;
}

interface Member {
  readonly memberId: string;
  clientId: string;
  clientHost: string;
  protocols: readonly ClassicProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** When its session ends without a heartbeat (not while it waits in a join). */
  deadlineMs: number;
  awaitingJoin: Waiter<ClassicJoinAnswer> | null;
  awaitingSync: Waiter<Buffer> | null;
  assignment: Buffer;
}

const EMPTY = Buffer.alloc(0);

export class ClassicGroup {
  private stateValue: ClassicGroupState = 'Empty';
  private generation = 0;
  private protocolTypeValue: string | null = null;
  private protocolValue: string | null = null;
  private leaderValue: string | null = null;
  /** In join order: the first one leads when the leader is gone. */
  private readonly members = new Map<string, Member>();
  /** Ids handed out with MEMBER_ID_REQUIRED, and until when they may join with them. */
  private readonly pendingIds = new Map<string, number>();
  /** While preparing: the latest the rebalance waits for members, and the earliest it may end (a new group's delay). */
  private rebalanceDeadlineMs = 0;
  private rebalanceEarliestMs = 0;
  private memberCounter = 0;

  /**
   * `newMemberId` names a member joining for the first time: the coordinator gives random
   * ids, so an id from before a coordinator failover never names a different member after it.
   */
  constructor(
    readonly groupId: string,
    private readonly limits: ClassicGroupLimits = defaultClassicGroupLimits,
    private readonly newMemberIdFor?: (clientId: string) => string,
  ) {}

  get state(): ClassicGroupState {
    return this.stateValue;
  }

  get generationId(): number {
    return this.generation;
  }

  get size(): number {
    return this.members.size;
  }

  /** A JoinGroup: answered when the next generation forms (at once when none is due), or refused. */
  join(request: ClassicJoinRequest, nowMs: number): Promise<ClassicJoinAnswer> {
    try {
      return this.joinNow(request, nowMs);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private joinNow(request: ClassicJoinRequest, nowMs: number): Promise<ClassicJoinAnswer> {
    this.checkJoin(request);
    let member = this.members.get(request.memberId);
    if (member === undefined) {
      if (request.memberId === '') {
        const memberId = this.newMemberId(request.clientId);
        if (request.requireKnownMemberId) {
          // Ids handed out but not yet joined with count against the group's size too, or a
          // client joining again and again without its id would pile them up.
          if (this.members.size + this.pendingIds.size >= this.limits.membersMax) {
            return Promise.reject(new DriftwoodError('GROUP_MAX_SIZE_REACHED', `${this.groupId} has ${this.members.size} members and ${this.pendingIds.size} member ids waiting to join`));
          }
          this.pendingIds.set(memberId, nowMs + request.sessionTimeoutMs);
          return Promise.reject(new DriftwoodError('MEMBER_ID_REQUIRED', `join again with member id ${memberId}`, { memberId }));
        }
        member = this.addMember(memberId, request, nowMs);
      } else if (this.pendingIds.delete(request.memberId)) {
        member = this.addMember(request.memberId, request, nowMs);
      } else {
        return Promise.reject(new DriftwoodError('UNKNOWN_MEMBER_ID', `${request.memberId} is not a member of ${this.groupId}`));
      }
      const waiting = this.waitForJoin(member);
      this.prepareRebalance(nowMs);
      this.tryCompleteJoin(nowMs);
      return waiting;
    }
    const changed = !sameProtocols(member.protocols, request.protocols);
    updateMember(member, request, nowMs);
    if (this.stateValue === 'PreparingRebalance') {
      const waiting = this.waitForJoin(member);
      this.tryCompleteJoin(nowMs);
      return waiting;
    }
    // A member that joins again unchanged while no rebalance is due gets the current generation.
    if (!changed && member.memberId !== this.leaderValue && (this.stateValue === 'Stable' || this.stateValue === 'CompletingRebalance')) {
      return Promise.resolve(this.joinAnswer(member));
    }
    const waiting = this.waitForJoin(member);
    this.prepareRebalance(nowMs);
    this.tryCompleteJoin(nowMs);
    return waiting;
  }

  sync(memberId: string, generationId: number, assignments: ReadonlyArray<{ memberId: string; assignment: Buffer }>, nowMs: number): Promise<Buffer> {
    const member = this.members.get(memberId);
    if (member === undefined) return Promise.reject(new DriftwoodError('UNKNOWN_MEMBER_ID', `${memberId} is not a member of ${this.groupId}`));
    if (generationId !== this.generation) return Promise.reject(this.illegalGeneration(generationId));
    if (this.stateValue === 'PreparingRebalance') return Promise.reject(this.rebalancing());
    member.deadlineMs = nowMs + member.sessionTimeoutMs;
    if (this.stateValue === 'Stable') return Promise.resolve(member.assignment);
    assert.equal(this.stateValue, 'CompletingRebalance');
    for (const { assignment } of assignments) {
      if (assignment.length > this.limits.assignmentBytesMax) return Promise.reject(new DriftwoodError('INVALID_REQUEST', `an assignment of ${assignment.length} bytes, over ${this.limits.assignmentBytesMax}`));
    }
    // A member that syncs again while its earlier sync waits (a client retrying a timed-out
    // request) is answered on the newer one. The older must be answered now: nothing else
    // holds it, so it would wait forever, and with it every later answer on its connection
    // (Kafka answers a connection's requests in order). The member is not told to start
    // over: REBALANCE_IN_PROGRESS has it join again, answered at once in this generation.
    member.awaitingSync?.reject(new DriftwoodError('REBALANCE_IN_PROGRESS', `${memberId} synced again with ${this.groupId}`));
    const waiting = new Promise<Buffer>((resolve, reject) => { member.awaitingSync = { resolve, reject }; });
    if (memberId === this.leaderValue) {
      const given = new Map(assignments.map((a) => [a.memberId, a.assignment]));
      for (const m of this.members.values()) m.assignment = given.get(m.memberId) ?? EMPTY;
      this.stateValue = 'Stable';
      for (const m of this.members.values()) {
        const waiter = m.awaitingSync;
        m.awaitingSync = null;
        waiter?.resolve(m.assignment);
      }
    }
    return waiting;
  }

  /** A member's heartbeat: its session goes on; the error tells it to join again (or who it is not). */
  heartbeat(memberId: string, generationId: number, nowMs: number): void {
    const member = this.members.get(memberId);
    if (member === undefined) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `${memberId} is not a member of ${this.groupId}`);
    member.deadlineMs = nowMs + member.sessionTimeoutMs;
    if (this.stateValue === 'PreparingRebalance') throw this.rebalancing();
    if (generationId !== this.generation) throw this.illegalGeneration(generationId);
  }

  /** Members leaving (LeaveGroup); answers per member: null, or why it could not leave. */
  leave(memberIds: readonly string[], nowMs: number): Array<DriftwoodError | null> {
    const answers = memberIds.map((memberId) => {
      const member = this.members.get(memberId);
      if (member === undefined) return new DriftwoodError('UNKNOWN_MEMBER_ID', `${memberId} is not a member of ${this.groupId}`);
      this.removeMember(member, new DriftwoodError('UNKNOWN_MEMBER_ID', `${memberId} left ${this.groupId}`));
      return null;
    });
    if (answers.some((answer) => answer === null)) this.membersChanged(nowMs);
    return answers;
  }

  /**
   * Whether an offset commit may go through: members commit in their current generation
   * while the group is not rebalancing; a consumer outside any group (member id '',
   * generation -1) commits only while the group has no members.
   */
  checkCommit(memberId: string, generationId: number): void {
    if (memberId === '' && generationId < 0) {
      if (this.members.size > 0) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `${this.groupId} has members; only they commit its offsets`);
      return;
    }
    if (!this.members.has(memberId)) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `${memberId} is not a member of ${this.groupId}`);
    if (generationId !== this.generation) throw this.illegalGeneration(generationId);
    if (this.stateValue === 'CompletingRebalance') throw this.rebalancing();
  }

  /** Moves time on: ends a rebalance that waited long enough, expires sessions and unused member ids. */
  tick(nowMs: number): void {
    for (const [memberId, deadlineMs] of this.pendingIds) if (deadlineMs <= nowMs) this.pendingIds.delete(memberId);
    if (this.stateValue === 'PreparingRebalance') {
      if (nowMs >= this.rebalanceDeadlineMs) {
        // Members that did not join again in time are out.
        for (const member of [...this.members.values()]) {
          if (member.awaitingJoin === null) this.removeMember(member, new DriftwoodError('UNKNOWN_MEMBER_ID', `${member.memberId} did not join ${this.groupId} again in time`));
        }
        this.completeJoin(nowMs);
      } else {
        this.tryCompleteJoin(nowMs);
      }
      return;
    }
    let expired = false;
    for (const member of [...this.members.values()]) {
      if (member.deadlineMs > nowMs) continue;
      this.removeMember(member, new DriftwoodError('UNKNOWN_MEMBER_ID', `${member.memberId}'s session in ${this.groupId} expired`));
      expired = true;
    }
    if (expired) this.membersChanged(nowMs);
  }

  /** When tick() has something to do next, or null. */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    const consider = (ms: number): void => { next = next === null ? ms : Math.min(next, ms); };
    for (const deadlineMs of this.pendingIds.values()) consider(deadlineMs);
    if (this.stateValue === 'PreparingRebalance') {
      consider(this.rebalanceDeadlineMs);
      if (this.rebalanceEarliestMs > 0) consider(this.rebalanceEarliestMs);
    } else {
      for (const member of this.members.values()) consider(member.deadlineMs);
    }
    return next;
  }

  /** DescribeGroups: the state, the protocol, and each member with its metadata and assignment. */
  describe(): { state: ClassicGroupState; protocolType: string; protocol: string; members: Array<{ memberId: string; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }> } {
    return {
      state: this.stateValue,
      protocolType: this.protocolTypeValue ?? '',
      protocol: this.stateValue === 'Stable' || this.stateValue === 'CompletingRebalance' ? this.protocolValue ?? '' : '',
      members: [...this.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: m.protocols.find((p) => p.name === this.protocolValue)?.metadata ?? EMPTY,
        assignment: m.assignment,
      })),
    };
  }

  /**
   * What a new coordinator needs to go on with the group after a failover: the generation,
   * the protocol, the leader, and every member with its metadata and assignment. Sessions
   * and waiting requests are not kept: sessions restart at restore, and a waiting member's
   * request fails with the old coordinator, so it asks the new one.
   */
  persisted(): PersistedClassicGroup {
    return {
      state: this.stateValue,
      generationId: this.generation,
      protocolType: this.protocolTypeValue,
      protocol: this.protocolValue,
      leader: this.leaderValue,
      members: [...this.members.values()].map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocols: m.protocols.map((p) => ({ name: p.name, metadata: p.metadata.toString('base64') })),
        assignment: m.assignment.toString('base64'),
      })),
    };
  }

  /**
   * Takes over a group from its persisted state. A group that was stable goes on stable (its
   * members heartbeat the new coordinator and keep their partitions); one caught in a
   * rebalance rebalances again, as its members' joins and syncs went to the old coordinator.
   */
  restore(persisted: PersistedClassicGroup, nowMs: number): void {
    this.abandon(new DriftwoodError('NOT_COORDINATOR', `${this.groupId} was taken over`));
    this.members.clear();
    this.pendingIds.clear();
    this.generation = this.limits.bugs?.has('classic-forget-generation') === true ? 0 : persisted.generationId;
    this.protocolTypeValue = persisted.protocolType;
    this.protocolValue = persisted.protocol;
    this.leaderValue = persisted.leader;
    for (const m of persisted.members) {
      this.members.set(m.memberId, {
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        protocols: m.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata, 'base64') })),
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        deadlineMs: nowMs + m.sessionTimeoutMs,
        awaitingJoin: null,
        awaitingSync: null,
        assignment: Buffer.from(m.assignment, 'base64'),
      });
    }
    this.rebalanceEarliestMs = 0;
    if (this.members.size === 0) {
      this.stateValue = 'Empty';
    } else if (persisted.state === 'Stable') {
      this.stateValue = 'Stable';
    } else {
      this.stateValue = 'PreparingRebalance';
      this.rebalanceDeadlineMs = nowMs + this.rebalanceTimeoutMs();
    }
  }

  /** The coordinator lets the group go (it lost the partition, or stops): every waiting request fails. */
  abandon(reason: DriftwoodError): void {
    for (const member of this.members.values()) {
      const join = member.awaitingJoin;
      const sync = member.awaitingSync;
      member.awaitingJoin = null;
      member.awaitingSync = null;
      join?.reject(reason);
      sync?.reject(reason);
    }
  }

  // --- internals ---

  private checkJoin(request: ClassicJoinRequest): void {
    const { sessionTimeoutMs, rebalanceTimeoutMs, protocols } = request;
    if (!Number.isSafeInteger(sessionTimeoutMs) || sessionTimeoutMs < this.limits.sessionTimeoutMsMin || sessionTimeoutMs > this.limits.sessionTimeoutMsMax) {
      throw new DriftwoodError('INVALID_SESSION_TIMEOUT', `session timeout ${sessionTimeoutMs} ms is outside [${this.limits.sessionTimeoutMsMin}, ${this.limits.sessionTimeoutMsMax}]`);
    }
    if (!Number.isSafeInteger(rebalanceTimeoutMs) || rebalanceTimeoutMs < 0 || rebalanceTimeoutMs > this.limits.sessionTimeoutMsMax) {
      throw new DriftwoodError('INVALID_REQUEST', `rebalance timeout ${rebalanceTimeoutMs} ms is outside [0, ${this.limits.sessionTimeoutMsMax}]`);
    }
    if (request.protocolType.length === 0 || protocols.length === 0 || protocols.length > this.limits.protocolsPerMemberMax) {
      throw new DriftwoodError('INCONSISTENT_GROUP_PROTOCOL', `a member names a protocol type and 1 to ${this.limits.protocolsPerMemberMax} protocols`);
    }
    for (const p of protocols) {
      if (p.metadata.length > this.limits.protocolMetadataBytesMax) throw new DriftwoodError('INVALID_REQUEST', `protocol ${p.name}'s metadata is ${p.metadata.length} bytes, over ${this.limits.protocolMetadataBytesMax}`);
    }
    // Checked against the group's type even when the member joining is its only member: the
    // type is set when the first member joins and kept while any member is in, so a sole
    // member accepted under another type would be answered with the old one (as Kafka does,
    // a group with members keeps its type).
    if (this.members.size > 0 && request.protocolType !== this.protocolTypeValue) {
      throw new DriftwoodError('INCONSISTENT_GROUP_PROTOCOL', `${this.groupId} uses protocol type ${this.protocolTypeValue ?? '(none)'}, not ${request.protocolType}`);
    }
    const others = [...this.members.values()].filter((m) => m.memberId !== request.memberId);
    if (others.length === 0) return;
    const shared = protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)));
    if (!shared) throw new DriftwoodError('INCONSISTENT_GROUP_PROTOCOL', `no protocol of [${protocols.map((p) => p.name).join(', ')}] is supported by every member of ${this.groupId}`);
    if (!this.members.has(request.memberId) && this.members.size >= this.limits.membersMax) {
      throw new DriftwoodError('GROUP_MAX_SIZE_REACHED', `${this.groupId} has ${this.members.size} members`);
    }
  }

  private newMemberId(clientId: string): string {
    const next = (): string => (this.newMemberIdFor === undefined ? this.countedMemberId(clientId) : this.newMemberIdFor(clientId));
    let memberId = next();
    while (this.members.has(memberId) || this.pendingIds.has(memberId)) memberId = next();
    return memberId;
  }

  private countedMemberId(clientId: string): string {
    this.memberCounter += 1;
    return `${clientId.length === 0 ? 'member' : clientId}-${this.generation}-${this.memberCounter}`;
  }

  private addMember(memberId: string, request: ClassicJoinRequest, nowMs: number): Member {
    const member: Member = {
      memberId,
      clientId: request.clientId,
      clientHost: request.clientHost,
      protocols: request.protocols,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      deadlineMs: nowMs + request.sessionTimeoutMs,
      awaitingJoin: null,
      awaitingSync: null,
      assignment: EMPTY,
    };
    if (this.members.size === 0) this.protocolTypeValue = request.protocolType;
    this.members.set(memberId, member);
    return member;
  }

  private waitForJoin(member: Member): Promise<ClassicJoinAnswer> {
    // A member that joins twice in one rebalance gets its answer on the newer request.
    member.awaitingJoin?.reject(new DriftwoodError('UNKNOWN_MEMBER_ID', `${member.memberId} joined again`));
    return new Promise<ClassicJoinAnswer>((resolve, reject) => { member.awaitingJoin = { resolve, reject }; });
  }

  private removeMember(member: Member, reason: DriftwoodError): void {
    this.members.delete(member.memberId);
    member.awaitingJoin?.reject(reason);
    member.awaitingSync?.reject(reason);
    if (this.leaderValue === member.memberId) this.leaderValue = null;
  }

  /** After members left or expired: a new generation, or an empty group. */
  private membersChanged(nowMs: number): void {
    if (this.members.size === 0) {
      this.toEmpty();
      return;
    }
    this.prepareRebalance(nowMs);
    this.tryCompleteJoin(nowMs);
  }

  private toEmpty(): void {
    this.generation += 1;
    this.stateValue = 'Empty';
    this.protocolValue = null;
    this.leaderValue = null;
    this.protocolTypeValue = null;
  }

  private prepareRebalance(nowMs: number): void {
    // The deadline set when the rebalance began holds (Kafka's delayed join): were each new
    // join to push it on, members that keep joining anew (a client that restarts after its
    // join request timed out) would keep the generation from ever forming.
    if (this.stateValue === 'PreparingRebalance') return;
    if (this.stateValue === 'CompletingRebalance') {
      for (const member of this.members.values()) {
        const waiter = member.awaitingSync;
        member.awaitingSync = null;
        waiter?.reject(this.rebalancing());
      }
    }
    // A new group waits for more members before it forms (Kafka's initial rebalance delay).
    this.rebalanceEarliestMs = this.stateValue === 'Empty' ? nowMs + this.limits.initialRebalanceDelayMs : 0;
    this.stateValue = 'PreparingRebalance';
    this.rebalanceDeadlineMs = Math.max(nowMs + this.rebalanceTimeoutMs(), this.rebalanceEarliestMs);
  }

  private rebalanceTimeoutMs(): number {
    return Math.max(0, ...[...this.members.values()].map((m) => m.rebalanceTimeoutMs));
  }

  private tryCompleteJoin(nowMs: number): void {
    if (this.stateValue !== 'PreparingRebalance' || nowMs < this.rebalanceEarliestMs) return;
    if ([...this.members.values()].every((m) => m.awaitingJoin !== null)) this.completeJoin(nowMs);
  }

  /** A new generation: a protocol every member supports, a leader, and every waiting join answered. */
  private completeJoin(nowMs: number): void {
    if (this.members.size === 0) {
      this.toEmpty();
      return;
    }
    this.generation += 1;
    this.protocolValue = this.chooseProtocol();
    if (this.leaderValue === null || !this.members.has(this.leaderValue)) this.leaderValue = this.members.keys().next().value ?? null;
    this.stateValue = 'CompletingRebalance';
    this.rebalanceEarliestMs = 0;
    for (const member of this.members.values()) {
      member.assignment = EMPTY;
      member.deadlineMs = nowMs + member.sessionTimeoutMs;
      const waiter = member.awaitingJoin;
      member.awaitingJoin = null;
      waiter?.resolve(this.joinAnswer(member));
    }
  }

  /** Each member votes for its most preferred protocol that every member supports; most votes wins, then the first member's order. */
  private chooseProtocol(): string {
    const all = [...this.members.values()];
    const first = all[0];
    assert(first !== undefined);
    const candidates = first.protocols.map((p) => p.name).filter((name) => all.every((m) => m.protocols.some((p) => p.name === name)));
    assert(candidates.length > 0, 'joins are refused unless a protocol is shared');
    const votes = new Map(candidates.map((name) => [name, 0]));
    for (const member of all) {
      const pick = member.protocols.find((p) => votes.has(p.name));
      if (pick !== undefined) votes.set(pick.name, (votes.get(pick.name) ?? 0) + 1);
    }
    let best = candidates[0] ?? '';
    for (const name of candidates) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name;
    return best;
  }

  private joinAnswer(member: Member): ClassicJoinAnswer {
    const protocolName = this.protocolValue ?? '';
    const leader = this.leaderValue ?? '';
    const members = member.memberId === leader
      ? [...this.members.values()].map((m) => ({ memberId: m.memberId, metadata: m.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY }))
      : [];
    return { generationId: this.generation, protocolType: this.protocolTypeValue ?? '', protocolName, leader, memberId: member.memberId, members };
  }

  private rebalancing(): DriftwoodError {
    return new DriftwoodError('REBALANCE_IN_PROGRESS', `${this.groupId} is rebalancing; join again`);
  }

  private illegalGeneration(generationId: number): DriftwoodError {
    return new DriftwoodError('ILLEGAL_GENERATION', `generation ${generationId} is not ${this.groupId}'s current ${this.generation}`);
  }
}

function sameProtocols(a: readonly ClassicProtocol[], b: readonly ClassicProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => {
    const q = b[i];
    return q !== undefined && p.name === q.name && p.metadata.equals(q.metadata);
  });
}

function updateMember(member: Member, request: ClassicJoinRequest, nowMs: number): void {
  member.clientId = request.clientId;
  member.clientHost = request.clientHost;
  member.protocols = request.protocols;
  member.sessionTimeoutMs = request.sessionTimeoutMs;
  member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
  member.deadlineMs = nowMs + request.sessionTimeoutMs;
}
