// One consumer group as its coordinator holds it: members, the target assignment, what each
// member has been granted and what it reports holding, and the committed offsets. Pure: time
// comes in as arguments, and the coordinator persists what `persisted()` returns before it
// answers (src/group/coordinator.ts).
//
// Membership follows KIP-848's reconciliation, so a rebalance is incremental, not
// stop-the-world: the coordinator computes a target assignment whenever the group epoch
// moves (a member joins, leaves, expires or changes its subscription, or a subscribed topic
// changes its partition count); at each heartbeat a member is granted its target partitions
// that nobody else holds, and is told to give up the ones no longer its target. A partition
// is granted only once no other member is granted it or still reports holding it, so at most
// one member of a group owns a partition at any time; a member keeps the partitions it still
// owns while others move.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';
import { assign, type AssignorName } from './assignor.js';

/** "topic/partition": topic names never contain '/'. */
export type PartitionKey = string;

export function partitionKey(topic: string, partition: number): PartitionKey {
  return `${topic}/${partition}`;
}

export function splitPartitionKey(key: PartitionKey): { topic: string; partition: number } {
  const slash = key.lastIndexOf('/');
  return { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
}

export interface TopicPartitionList {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** Sorted by topic, partitions ascending: the wire form of a set of partitions. */
export function toTopicPartitionList(keys: Iterable<PartitionKey>): TopicPartitionList[] {
  const byTopic = new Map<string, number[]>();
  for (const key of keys) {
    const { topic, partition } = splitPartitionKey(key);
    const list = byTopic.get(topic) ?? [];
    list.push(partition);
    byTopic.set(topic, list);
  }
  return [...byTopic].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
}

export function fromTopicPartitionList(list: readonly TopicPartitionList[]): Set<PartitionKey> {
  return new Set(list.flatMap(({ topic, partitions }) => partitions.map((p) => partitionKey(topic, p))));
}

/** A deliberate defect the cluster simulator must catch (`driftwood sim --bug`); never set otherwise. */
export type GroupBug = 'grant-unreleased';

export interface GroupLimits {
  /** Defects for the simulator only. */
  readonly bugs?: ReadonlySet<GroupBug>;
  readonly membersMax: number;
  readonly sessionTimeoutMsMin: number;
  readonly sessionTimeoutMsMax: number;
  readonly sessionTimeoutMsDefault: number;
  readonly heartbeatIntervalMs: number;
}

export const defaultGroupLimits: GroupLimits = {
  membersMax: 1000,
  sessionTimeoutMsMin: 1000,
  sessionTimeoutMsMax: 300_000,
  sessionTimeoutMsDefault: 10_000,
  heartbeatIntervalMs: 1000,
};

/** What a member said in one heartbeat (the HTTP body, checked by schema). */
export interface HeartbeatRequest {
  readonly memberId: string | null;
  /** 0 to join, -1 to leave, else the epoch the coordinator last answered. */
  readonly memberEpoch: number;
  readonly clientId?: string;
  readonly host?: string;
  readonly subscribedTopics?: readonly string[];
  readonly ownedPartitions?: readonly TopicPartitionList[];
  readonly sessionTimeoutMs?: number;
  readonly assignor?: AssignorName;
}

export interface HeartbeatAnswer {
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly heartbeatIntervalMs: number;
  readonly assignment: TopicPartitionList[];
}

export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string;
  readonly commitMs: number;
}

/** A member as the log keeps it: enough for a new coordinator to honour every grant. */
export interface PersistedMember {
  readonly memberId: string;
  readonly clientId: string;
  readonly host: string;
  readonly memberEpoch: number;
  readonly subscribedTopics: readonly string[];
  readonly sessionTimeoutMs: number;
  readonly assigned: readonly TopicPartitionList[];
}

export interface PersistedGroup {
  readonly groupEpoch: number;
  readonly assignor: AssignorName;
  /** When the last member left; offsets are kept for the retention period after. */
  readonly emptySinceMs: number | null;
  readonly members: readonly PersistedMember[];
}

interface Member {
  readonly memberId: string;
  clientId: string;
  host: string;
  memberEpoch: number;
  subscribedTopics: string[];
  sessionTimeoutMs: number;
  /** What the coordinator has granted: the member may hold these. */
  assigned: Set<PartitionKey>;
  /** What the member last reported holding (granted earlier, maybe not yet given up). */
  owned: Set<PartitionKey>;
  deadlineMs: number;
}

export type GroupStateName = 'empty' | 'reconciling' | 'stable';

export class ConsumerGroup {
  private groupEpochValue = 0;
  private assignorValue: AssignorName = 'range';
  private emptySinceMsValue: number | null = null;
  private readonly members = new Map<string, Member>();
  /** The target assignment and the group epoch and partition counts it was computed for. */
  private target: { epoch: number; counts: string; byMember: Map<string, Set<PartitionKey>> } | null = null;
  readonly offsets = new Map<PartitionKey, CommittedOffset>();

  constructor(readonly groupId: string, private readonly limits: GroupLimits = defaultGroupLimits) {}

  get groupEpoch(): number {
    return this.groupEpochValue;
  }

  get assignor(): AssignorName {
    return this.assignorValue;
  }

  get memberCount(): number {
    return this.members.size;
  }

  get emptySinceMs(): number | null {
    return this.emptySinceMsValue;
  }

  /**
   * One heartbeat. `nowMs` is monotonic time (sessions must not expire on a wall-clock jump),
   * `wallMs` wall time (when a group became empty, for retention). `partitionCounts` gives
   * the current partition count of every existing topic the group may subscribe to;
   * `newMemberId` names a joining member.
   */
  heartbeat(request: HeartbeatRequest, nowMs: number, partitionCounts: (topic: string) => number | undefined, newMemberId: () => string, wallMs = nowMs): HeartbeatAnswer {
    if (request.memberEpoch === 0) {
      // A member that dropped out (fenced, or its session ran out as it counts it) and joins
      // again names the id it had, as KIP-848's rejoin does: it holds nothing now, so what that
      // id was granted is free at once, not only when the old session runs out at the
      // coordinator (which a coordinator failover restarts). It still joins under a new id,
      // so a commit the old one left in flight is refused.
      if (request.memberId !== null && this.members.has(request.memberId)) this.remove(request.memberId, wallMs);
      return this.join(request, nowMs, partitionCounts, newMemberId());
    }
    const member = request.memberId === null ? undefined : this.members.get(request.memberId);
    if (member === undefined) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `group ${this.groupId} has no member ${request.memberId ?? '(none)'}`);
    if (request.memberEpoch === -1) {
      this.remove(member.memberId, wallMs);
      return { memberId: member.memberId, memberEpoch: -1, heartbeatIntervalMs: this.limits.heartbeatIntervalMs, assignment: [] };
    }
    if (request.memberEpoch > member.memberEpoch) {
      throw new DriftwoodError('FENCED_MEMBER_EPOCH', `member ${member.memberId} sent epoch ${request.memberEpoch}; the group has it at ${member.memberEpoch}`);
    }
    if (request.subscribedTopics !== undefined && !sameTopics(request.subscribedTopics, member.subscribedTopics)) {
      member.subscribedTopics = normalizedTopics(request.subscribedTopics);
      this.groupEpochValue += 1;
    }
    if (request.ownedPartitions !== undefined) {
      // A member can only give partitions up this way, never claim ones it was not granted.
      const reported = fromTopicPartitionList(request.ownedPartitions);
      member.owned = new Set([...reported].filter((key) => member.assigned.has(key) || member.owned.has(key)));
    }
    member.deadlineMs = nowMs + member.sessionTimeoutMs;
    return this.reconcile(member, partitionCounts);
  }

  private join(request: HeartbeatRequest, nowMs: number, partitionCounts: (topic: string) => number | undefined, memberId: string): HeartbeatAnswer {
    if (this.members.size >= this.limits.membersMax) throw new DriftwoodError('GROUP_MAX_SIZE_REACHED', `group ${this.groupId} has ${this.members.size} members (at most ${this.limits.membersMax})`);
    const topics = request.subscribedTopics ?? [];
    if (topics.length === 0) throw new DriftwoodError('INVALID_REQUEST', 'a joining member names the topics it subscribes to (subscribedTopics)');
    const sessionTimeoutMs = request.sessionTimeoutMs ?? this.limits.sessionTimeoutMsDefault;
    if (sessionTimeoutMs < this.limits.sessionTimeoutMsMin || sessionTimeoutMs > this.limits.sessionTimeoutMsMax) {
      throw new DriftwoodError('INVALID_REQUEST', `sessionTimeoutMs must be within [${this.limits.sessionTimeoutMsMin}, ${this.limits.sessionTimeoutMsMax}]`);
    }
    assert(!this.members.has(memberId), `member id ${memberId} is fresh`);
    // The first member picks the assignor of an empty group, as Kafka's group protocol does.
    if (this.members.size === 0 && request.assignor !== undefined) this.assignorValue = request.assignor;
    this.groupEpochValue += 1;
    const member: Member = {
      memberId,
      clientId: request.clientId ?? '',
      host: request.host ?? '',
      memberEpoch: this.groupEpochValue,
      subscribedTopics: normalizedTopics(topics),
      sessionTimeoutMs,
      assigned: new Set(),
      owned: new Set(),
      deadlineMs: nowMs + sessionTimeoutMs,
    };
    this.members.set(memberId, member);
    this.emptySinceMsValue = null;
    return this.reconcile(member, partitionCounts);
  }

  /** Grants what is free of the member's target, takes back what is not its target. */
  private reconcile(member: Member, partitionCounts: (topic: string) => number | undefined): HeartbeatAnswer {
    const target = this.targetFor(member.memberId, partitionCounts);
    const next = new Set([...member.assigned].filter((key) => target.has(key)));
    for (const key of target) if (!next.has(key) && this.isFree(key, member.memberId)) next.add(key);
    if (!sameSet(next, member.assigned)) {
      member.assigned = next;
      member.memberEpoch = this.groupEpochValue;
    }
    return { memberId: member.memberId, memberEpoch: member.memberEpoch, heartbeatIntervalMs: this.limits.heartbeatIntervalMs, assignment: toTopicPartitionList(member.assigned) };
  }

  private isFree(key: PartitionKey, except: string): boolean {
    // The defect: hand a partition over as soon as it is revoked, before its holder gave it up.
    const waitForRelease = this.limits.bugs?.has('grant-unreleased') !== true;
    for (const other of this.members.values()) {
      if (other.memberId !== except && (other.assigned.has(key) || (waitForRelease && other.owned.has(key)))) return false;
    }
    return true;
  }

  private targetFor(memberId: string, partitionCounts: (topic: string) => number | undefined): Set<PartitionKey> {
    const topics = [...new Set([...this.members.values()].flatMap((member) => member.subscribedTopics))].sort();
    const counts = new Map<string, number>();
    for (const topic of topics) {
      const count = partitionCounts(topic);
      if (count !== undefined) counts.set(topic, count);
    }
    const fingerprint = JSON.stringify([...counts]);
    if (this.target === null || this.target.epoch !== this.groupEpochValue || this.target.counts !== fingerprint) {
      // A subscribed topic appeared, went or changed its partition count: a new group epoch.
      if (this.target !== null && this.target.epoch === this.groupEpochValue) this.groupEpochValue += 1;
      const byMember = new Map<string, Set<PartitionKey>>();
      const computed = assign(this.assignorValue, [...this.members.values()], counts);
      for (const [id, topicPartitions] of computed) byMember.set(id, new Set([...topicPartitions].flatMap(([topic, partitions]) => partitions.map((p) => partitionKey(topic, p)))));
      this.target = { epoch: this.groupEpochValue, counts: fingerprint, byMember };
    }
    return this.target.byMember.get(memberId) ?? new Set();
  }

  private remove(memberId: string, wallMs: number): void {
    if (!this.members.delete(memberId)) return;
    this.groupEpochValue += 1;
    if (this.members.size === 0) this.emptySinceMsValue = wallMs;
  }

  /** Removes members whose session ran out by monotonic `nowMs`; returns their ids. */
  expire(nowMs: number, wallMs = nowMs): string[] {
    const expired = [...this.members.values()].filter((member) => member.deadlineMs < nowMs).map((member) => member.memberId);
    for (const id of expired) this.remove(id, wallMs);
    return expired;
  }

  /** The earliest session deadline, or null without members. */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    for (const member of this.members.values()) next = next === null ? member.deadlineMs : Math.min(next, member.deadlineMs);
    return next;
  }

  /**
   * Whether a commit may go ahead: a member's only for partitions it holds (granted, or
   * still reported while it gives them up); a standalone commit (no member) only while the
   * group has no members. Offsets never go back here; reset does that explicitly.
   */
  checkCommit(memberId: string | undefined, memberEpoch: number | undefined, offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>): void {
    if (memberId === undefined) {
      if (this.members.size > 0) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `group ${this.groupId} has members: commit as one of them (memberId, memberEpoch)`);
    } else {
      const member = this.members.get(memberId);
      if (member === undefined) throw new DriftwoodError('UNKNOWN_MEMBER_ID', `group ${this.groupId} has no member ${memberId}`);
      if (memberEpoch !== undefined && memberEpoch > member.memberEpoch) throw new DriftwoodError('FENCED_MEMBER_EPOCH', `member ${memberId} sent epoch ${memberEpoch}; the group has it at ${member.memberEpoch}`);
      for (const { topic, partition } of offsets) {
        const key = partitionKey(topic, partition);
        if (!member.assigned.has(key) && !member.owned.has(key)) throw new DriftwoodError('STALE_MEMBER_EPOCH', `member ${memberId} does not hold ${key}`, { topic, partition });
      }
    }
    for (const { topic, partition, offset } of offsets) {
      const committed = this.offsets.get(partitionKey(topic, partition));
      if (committed !== undefined && offset < committed.offset) {
        throw new DriftwoodError('COMMIT_OFFSET_REGRESSION', `${topic}-${partition}: ${offset} is below the committed ${committed.offset}`, { topic, partition, committed: committed.offset });
      }
    }
  }

  get state(): GroupStateName {
    if (this.members.size === 0) return 'empty';
    for (const member of this.members.values()) {
      const target = this.target?.byMember.get(member.memberId);
      if (target === undefined || !sameSet(target, member.assigned) || [...member.owned].some((key) => !member.assigned.has(key))) return 'reconciling';
    }
    return 'stable';
  }

  describeMembers(): Array<{ memberId: string; clientId: string; host: string; memberEpoch: number; assignment: TopicPartitionList[] }> {
    return [...this.members.values()]
      .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
      .map((member) => ({ memberId: member.memberId, clientId: member.clientId, host: member.host, memberEpoch: member.memberEpoch, assignment: toTopicPartitionList(member.assigned) }));
  }

  /** The membership as the log keeps it (offsets are records of their own). */
  persisted(): PersistedGroup {
    return {
      groupEpoch: this.groupEpochValue,
      assignor: this.assignorValue,
      emptySinceMs: this.emptySinceMsValue,
      members: [...this.members.values()]
        .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
        .map((member) => ({
          memberId: member.memberId,
          clientId: member.clientId,
          host: member.host,
          memberEpoch: member.memberEpoch,
          subscribedTopics: member.subscribedTopics,
          sessionTimeoutMs: member.sessionTimeoutMs,
          // What a member may still hold: granted, or reported and not yet given up.
          assigned: toTopicPartitionList(new Set([...member.assigned, ...member.owned])),
        })),
    };
  }

  /**
   * Takes the membership from the log (a new coordinator). Every member is taken to hold all
   * it was granted and gets a fresh session, so nothing it may hold is granted to another
   * until it gives it up or its session, counted from now, runs out. The same coordinator
   * replaying after a failed write passes the deadlines it had: a failure must not keep
   * renewing the sessions of members that have stopped.
   */
  restore(persisted: PersistedGroup, nowMs: number, knownDeadlinesMs?: ReadonlyMap<string, number>): void {
    this.groupEpochValue = persisted.groupEpoch;
    this.assignorValue = persisted.assignor;
    this.emptySinceMsValue = persisted.emptySinceMs;
    this.members.clear();
    this.target = null;
    for (const m of persisted.members) {
      const held = fromTopicPartitionList(m.assigned);
      this.members.set(m.memberId, {
        memberId: m.memberId,
        clientId: m.clientId,
        host: m.host,
        memberEpoch: m.memberEpoch,
        subscribedTopics: [...m.subscribedTopics],
        sessionTimeoutMs: m.sessionTimeoutMs,
        assigned: held,
        owned: new Set(held),
        // Replayed by the coordinator that timed the session, the deadline it had still holds.
        deadlineMs: knownDeadlinesMs?.get(m.memberId) ?? nowMs + m.sessionTimeoutMs,
      });
    }
  }

  /** Each member's session deadline, for a replay by the same coordinator. */
  deadlines(): Map<string, number> {
    return new Map([...this.members.values()].map((member) => [member.memberId, member.deadlineMs]));
  }
}

function normalizedTopics(topics: readonly string[]): string[] {
  return [...new Set(topics)].sort();
}

function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  const x = normalizedTopics(a);
  return x.length === b.length && x.every((topic, i) => topic === b[i]);
}

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}
