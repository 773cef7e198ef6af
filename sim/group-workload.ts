// Consumer groups in the cluster simulator: members of one group share the data topic
// through the real group coordinator (src/group) while the nemesis works on the brokers.
// Members follow the member rules of the group API (README, Consumer groups): heartbeat,
// give up revoked partitions at once and say so, start new ones at the committed offset,
// commit their position, and drop everything when their session may have run out. Members
// also die and come back as new members, so sessions expire under load.
//
// Checks:
// - two-owners: two members of the group hold one partition at the same time (by what each
//   member was told and has not yet given up);
// - commit-regress: an offset fetch answers less than a commit acknowledged before it was
//   asked (a lost commit), or the group's final offsets are below an acknowledged commit;
// - group-skip: below the final committed offset, a record no member of the group was given.
import { DriftwoodError } from '../storage/errors.js';
import type { BrokerNode } from '../src/broker/broker-node.js';
import type { HeartbeatAnswer } from '../src/group/group.js';
import { readBatches } from './batches.js';
import type { SeededRng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export type GroupViolationKind = 'two-owners' | 'commit-regress' | 'group-skip' | 'liveness';

export interface GroupSimPorts {
  readonly scheduler: Scheduler;
  readonly rng: SeededRng;
  /** Running, unpaused nodes, with a generation that changes when one restarts. */
  readonly nodes: () => ReadonlyArray<{ id: number; node: BrokerNode; generation: number }>;
  readonly topic: string;
  readonly partitions: number;
  /** Whether clients still work (they stop half-way through the healed time). */
  readonly active: () => boolean;
  readonly violation: (kind: GroupViolationKind, text: string) => void;
  /** A record a member was given, for the data history's checks too. */
  readonly read: (partition: number, offset: number, value: string) => void;
}

export interface GroupCounts {
  readonly members: number;
  readonly delivered: number;
  readonly commitsAcknowledged: number;
  readonly rebalances: number;
}

const GROUP = 'sim-group';
const SESSION_MS = 6000;
const TICK_MS = 250;
/** A call not answered by then counts as failed (the broker may have died or paused). */
const CALL_TIMEOUT_MS = 7000;
const COMMIT_EVERY_TICKS = 4;
const FETCH_BYTES_MAX = 64 * 1024;
/** How long a member takes to finish with a revoked partition. */
const REVOKE_MS_MIN = 20;
const REVOKE_MS_SPREAD = 600;
/** How long the final check keeps asking for the group's offsets. */
const CHECK_RETRY_MS = 4000;

interface Held {
  /** Next offset to read; null until the committed offset is known. */
  position: number | null;
  fetching: boolean;
  /** Told to give it up: no new fetches; released once the member has finished with it. */
  revoking: boolean;
}

interface Member {
  readonly name: string;
  memberId: string | null;
  memberEpoch: number;
  /** Bumped whenever the member drops everything: answers to older requests are ignored. */
  incarnation: number;
  readonly held: Map<number, Held>;
  /** When the last heartbeat that was answered was sent. */
  lastOkSentMs: number;
  heartbeatDueMs: number;
  heartbeatInFlight: boolean;
  alive: boolean;
  ticks: number;
}

export class GroupWorkload {
  private readonly members: Member[];
  /** Which member holds each partition now, by the members' own beliefs. */
  private readonly owner = new Map<number, string>();
  /** Per partition: the highest acknowledged commit and when it was acknowledged. */
  private readonly acked = new Map<number, Array<{ offset: number; atMs: number }>>();
  private readonly delivered: Array<Set<number>>;
  private commitsAcknowledged = 0;
  private rebalances = 0;
  private deliveredCount = 0;

  constructor(private readonly ports: GroupSimPorts, memberCount: number) {
    this.members = Array.from({ length: memberCount }, (_, i) => ({
      name: `m${i}`, memberId: null, memberEpoch: 0, incarnation: 0, held: new Map(), lastOkSentMs: 0, heartbeatDueMs: 0, heartbeatInFlight: false, alive: true, ticks: 0,
    }));
    this.delivered = Array.from({ length: ports.partitions }, () => new Set<number>());
  }

  start(): void {
    for (const member of this.members) this.schedule(member, 1 + this.ports.rng.int(TICK_MS));
  }

  private schedule(member: Member, delayMs: number): void {
    this.ports.scheduler.after(delayMs, `group ${member.name}`, () => {
      if (!this.ports.active()) return;
      this.tick(member);
      this.schedule(member, TICK_MS);
    });
  }

  private tick(member: Member): void {
    const now = this.ports.scheduler.nowMs;
    member.ticks += 1;
    if (!member.alive) {
      if (this.ports.rng.chance(0.05)) member.alive = true; // a new process, a new member
      return;
    }
    if (member.memberId !== null && this.ports.rng.chance(0.002)) {
      this.dropAll(member, 'died');
      member.alive = false;
      return;
    }
    if (!member.heartbeatInFlight && now >= member.heartbeatDueMs) this.heartbeat(member);
    // Commits first: a fetch in flight makes a partition's position unsettled.
    if (member.ticks % COMMIT_EVERY_TICKS === 0) this.commit(member);
    for (const [partition, held] of member.held) if (held.position !== null && !held.fetching && !held.revoking) this.fetch(member, partition, held);
  }

  /** The member's session may have run out at the coordinator: it holds nothing from here on. */
  private dropAll(member: Member, why: string): void {
    for (const partition of member.held.keys()) this.release(member, partition);
    if (member.memberId !== null) this.ports.scheduler.record(`group ${member.name} drops everything (${why})`);
    member.memberId = null;
    member.memberEpoch = 0;
    member.incarnation += 1;
    member.heartbeatDueMs = 0;
    // The answer of a heartbeat in flight now belongs to the old incarnation and is ignored.
    member.heartbeatInFlight = false;
  }

  private release(member: Member, partition: number): void {
    member.held.delete(partition);
    if (this.owner.get(partition) === member.name) this.owner.delete(partition);
  }

  private take(member: Member, partition: number): void {
    const other = this.owner.get(partition);
    if (other !== undefined && other !== member.name) {
      this.ports.violation('two-owners', `${GROUP}: ${member.name} was given ${this.ports.topic}-${partition} while ${other} still holds it`);
    }
    this.owner.set(partition, member.name);
    member.held.set(partition, { position: null, fetching: false, revoking: false });
  }

  /** Some node's view of the coordinator, then that node (if it runs). */
  private coordinator(): { id: number; node: BrokerNode; generation: number } | null {
    const nodes = this.ports.nodes();
    const asked = nodes[this.ports.rng.int(Math.max(1, nodes.length))];
    if (asked === undefined) return null;
    try {
      const { coordinatorId } = asked.node.groups.coordinatorFor(GROUP);
      return nodes.find((n) => n.id === coordinatorId) ?? null;
    } catch {
      return null;
    }
  }

  /** Runs a call with the client's timeout; `then` sees the answer only if it came in time and the member is the same incarnation. */
  private call<T>(member: Member, work: (node: BrokerNode) => Promise<T>, then: (answer: T | DriftwoodError | null, sentMs: number, nodeId: number) => void): void {
    const target = this.coordinator();
    const sentMs = this.ports.scheduler.nowMs;
    const incarnation = member.incarnation;
    if (target === null) {
      then(null, sentMs, 0);
      return;
    }
    let done = false;
    const finish = (answer: T | DriftwoodError | null): void => {
      if (done) return;
      done = true;
      timer.cancelled = true;
      if (member.incarnation !== incarnation) return;
      then(answer, sentMs, target.id);
    };
    const timer = this.ports.scheduler.after(CALL_TIMEOUT_MS, 'group call timeout', () => { finish(null); });
    const generation = target.generation;
    work(target.node).then(
      (answer) => { finish(this.nodeSame(target.id, generation) ? answer : null); },
      (error: unknown) => { finish(error instanceof DriftwoodError ? error : null); },
    );
  }

  private nodeSame(id: number, generation: number): boolean {
    return this.ports.nodes().some((n) => n.id === id && n.generation === generation);
  }

  private heartbeat(member: Member): void {
    const owned = [{ topic: this.ports.topic, partitions: [...member.held.keys()].sort((a, b) => a - b) }];
    const request = member.memberId === null
      ? { memberId: null, memberEpoch: 0, clientId: member.name, subscribedTopics: [this.ports.topic], sessionTimeoutMs: SESSION_MS }
      : { memberId: member.memberId, memberEpoch: member.memberEpoch, ownedPartitions: owned };
    member.heartbeatInFlight = true;
    const incarnation = member.incarnation;
    // Self-fencing, timed exactly: with no answered heartbeat for a session, drop everything.
    this.ports.scheduler.after(SESSION_MS, 'group session check', () => {
      if (member.incarnation === incarnation && member.memberId !== null && this.ports.scheduler.nowMs - member.lastOkSentMs >= SESSION_MS) this.dropAll(member, 'session');
    });
    this.call(member, (node) => node.groups.heartbeat(GROUP, request), (answer, sentMs, nodeId) => {
      member.heartbeatInFlight = false;
      if (answer === null || answer instanceof DriftwoodError) {
        if (answer instanceof DriftwoodError && (answer.code === 'UNKNOWN_MEMBER_ID' || answer.code === 'FENCED_MEMBER_EPOCH')) this.dropAll(member, answer.code);
        member.heartbeatDueMs = this.ports.scheduler.nowMs + 200;
        return;
      }
      // An answer to a request older than a session is no proof the session lasted.
      if (this.ports.scheduler.nowMs - sentMs >= SESSION_MS) return;
      if (member.memberId !== null && answer.memberId !== member.memberId) return;
      this.ports.scheduler.record(`group ${member.name} heartbeat at n${nodeId}: epoch ${answer.memberEpoch} [${answer.assignment.flatMap((a) => a.partitions).join(',')}]`);
      this.applyAnswer(member, answer, sentMs);
    });
  }

  private applyAnswer(member: Member, answer: HeartbeatAnswer, sentMs: number): void {
    member.memberId = answer.memberId;
    member.memberEpoch = answer.memberEpoch;
    member.lastOkSentMs = Math.max(member.lastOkSentMs, sentMs);
    member.heartbeatDueMs = this.ports.scheduler.nowMs + answer.heartbeatIntervalMs;
    const granted = new Set(answer.assignment.filter((a) => a.topic === this.ports.topic).flatMap((a) => a.partitions));
    for (const [partition, held] of member.held) {
      if (granted.has(partition) || held.revoking) continue;
      // Finishing with a partition takes a while (Kafka's onPartitionsRevoked): it keeps
      // counting as held, and the coordinator must not hand it on, until the member says so.
      held.revoking = true;
      const incarnation = member.incarnation;
      this.ports.scheduler.after(REVOKE_MS_MIN + this.ports.rng.int(REVOKE_MS_SPREAD), 'group revoke', () => {
        if (member.incarnation !== incarnation || member.held.get(partition) !== held) return;
        this.release(member, partition);
        // Acknowledged at once, so the new owner need not wait a heartbeat.
        member.heartbeatDueMs = this.ports.scheduler.nowMs;
      });
    }
    for (const partition of granted) {
      if (member.held.has(partition)) continue;
      this.take(member, partition);
      this.rebalances += 1;
      this.startAtCommitted(member, partition);
    }
  }

  private startAtCommitted(member: Member, partition: number): void {
    this.call(member, (node) => node.groups.fetchOffsets(GROUP, this.ports.topic), (answer, sentMs, nodeId) => {
      const held = member.held.get(partition);
      if (held === undefined) return;
      if (answer === null || answer instanceof DriftwoodError) {
        this.ports.scheduler.after(200, 'group offsets retry', () => { if (member.held.get(partition) === held) this.startAtCommitted(member, partition); });
        return;
      }
      const committed = answer.offsets.find((o) => o.partition === partition)?.offset ?? 0;
      this.ports.scheduler.record(`group ${member.name} starts ${this.ports.topic}-${partition} at committed ${committed} (n${nodeId})`);
      const before = (this.acked.get(partition) ?? []).filter((a) => a.atMs <= sentMs).reduce((max, a) => Math.max(max, a.offset), 0);
      if (committed < before) this.ports.violation('commit-regress', `${GROUP} ${this.ports.topic}-${partition}: committed ${committed} fetched, ${before} was acknowledged before`);
      held.position = committed;
    });
  }

  private fetch(member: Member, partition: number, held: Held): void {
    const from = held.position;
    if (from === null) return;
    const leaders = this.ports.nodes().filter((n) => n.node.replicas.partition(this.topicId(n.node) ?? '', partition)?.isLeader === true);
    const leader = leaders[this.ports.rng.int(Math.max(1, leaders.length))];
    if (leader === undefined) return;
    held.fetching = true;
    const incarnation = member.incarnation;
    leader.node.replicas.consume(this.ports.topic, partition, from, { bytesMax: FETCH_BYTES_MAX, minBytes: 1, maxWaitMs: 0 }).then(
      (read) => {
        held.fetching = false;
        // Only what a member holding the partition now reads counts as given to it.
        if (member.incarnation !== incarnation || member.held.get(partition) !== held || held.position !== from || !this.nodeSame(leader.id, leader.generation)) return;
        for (const batch of readBatches(read.bytes)) {
          for (const { offset, value } of batch.records) {
            if (offset < from) continue;
            this.delivered[partition]?.add(offset);
            this.deliveredCount += 1;
            this.ports.read(partition, offset, value);
          }
        }
        held.position = Math.max(from, read.nextOffset);
      },
      () => { held.fetching = false; },
    );
  }

  private topicId(node: BrokerNode): string | undefined {
    return node.image.topic(this.ports.topic)?.topicId;
  }

  private commit(member: Member): void {
    if (member.memberId === null) return;
    const offsets = [...member.held].filter(([, held]) => held.position !== null && !held.fetching).map(([partition, held]) => ({ topic: this.ports.topic, partition, offset: held.position ?? 0 }));
    if (offsets.length === 0) return;
    const memberId = member.memberId;
    const memberEpoch = member.memberEpoch;
    this.call(member, (node) => node.groups.commit(GROUP, memberId, memberEpoch, offsets), (answer, _sentMs, nodeId) => {
      if (answer === null || answer instanceof DriftwoodError) return;
      const atMs = this.ports.scheduler.nowMs;
      this.ports.scheduler.record(`group ${member.name} committed ${answer.offsets.map((o) => `${o.partition}@${o.offset}`).join(',')} (n${nodeId})`);
      for (const o of answer.offsets) {
        const list = this.acked.get(o.partition) ?? [];
        list.push({ offset: o.offset, atMs });
        this.acked.set(o.partition, list);
        this.commitsAcknowledged += 1;
      }
    });
  }

  /**
   * After healing: the group's committed offsets (asked of the coordinator) are at least
   * every acknowledged commit, and every record below them was given to some member.
   */
  async check(): Promise<GroupCounts> {
    const counts = { members: this.members.length, delivered: this.deliveredCount, commitsAcknowledged: this.commitsAcknowledged, rebalances: this.rebalances };
    if (this.commitsAcknowledged === 0) return counts;
    const final = await this.finalOffsets();
    if (final === null) return counts;
    for (let partition = 0; partition < this.ports.partitions; partition += 1) {
      const committed = final.find((o) => o.partition === partition)?.offset ?? 0;
      const acked = (this.acked.get(partition) ?? []).reduce((max, a) => Math.max(max, a.offset), 0);
      if (committed < acked) this.ports.violation('commit-regress', `${GROUP} ${this.ports.topic}-${partition}: final committed ${committed} is below the acknowledged ${acked}`);
      const given = this.delivered[partition] ?? new Set<number>();
      for (let offset = 0; offset < committed; offset += 1) {
        if (!given.has(offset)) {
          this.ports.violation('group-skip', `${GROUP} ${this.ports.topic}-${partition}: offset ${offset} is below the committed ${committed} but no member was given it`);
          break;
        }
      }
    }
    return counts;
  }

  /** The coordinator's offsets, retried (it may still be loading) for CHECK_RETRY_MS; null after a liveness violation. */
  private async finalOffsets(): Promise<Array<{ partition: number; offset: number }> | null> {
    const deadlineMs = this.ports.scheduler.nowMs + CHECK_RETRY_MS;
    let why = 'no coordinator';
    while (this.ports.scheduler.nowMs < deadlineMs) {
      const target = this.coordinator();
      if (target !== null) {
        try {
          return (await target.node.groups.fetchOffsets(GROUP, this.ports.topic)).offsets;
        } catch (error) {
          why = `n${target.id}: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
      await new Promise<void>((resolve) => { this.ports.scheduler.after(200, 'group check retry', resolve); });
    }
    this.ports.violation('liveness', `${GROUP}: no coordinator answered its offsets within ${CHECK_RETRY_MS} ms after healing (${why})`);
    return null;
  }
}
