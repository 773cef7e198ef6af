// A consumer group under Kafka's classic protocol in the cluster simulator: members share the
// data topic through the real group coordinator's classic methods (joinClassic, syncClassic,
// heartbeatClassic, leaveClassic, commitClassic, fetchOffsets), called on whichever node
// they believe coordinates, as a Kafka consumer does through the Kafka listener: the
// two-step join (MEMBER_ID_REQUIRED), a leader that computes a range assignment and hands it
// out opaque through SyncGroup, heartbeats every tick, and on REBALANCE_IN_PROGRESS or
// ILLEGAL_GENERATION (eager rebalancing) a commit, then its partitions given up and a new
// join; on UNKNOWN_MEMBER_ID a join anew. A coordinator error or a timed-out call makes the
// member look for the coordinator again. Members die (some leaving, some silent, so sessions
// expire) and come back as new members while the nemesis works.
//
// Checks (what the coordinator promises, seen from the clients):
// - classic-two-owners: two members' SyncGroup answers of one generation give one partition
//   to both (across generations members may overlap for a while: eager members notice a
//   rebalance only at their next heartbeat, and their commits are fenced by generation);
// - classic-stale-commit: a commit for generation G acknowledged although, before it was
//   sent, the coordinator had answered a join for a later generation (it moves the group to
//   that generation, durably, before answering, and refuses commits of older ones from then);
// - classic-commit-regress: an offset fetch answering less than a commit acknowledged before
//   it was asked, or the group's final offsets below an acknowledged commit;
// - liveness: after healing, every member in one generation whose leader was given exactly
//   them, and everything below the data partitions' high watermarks (as the check is given
//   them) delivered to the group and committed.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../storage/errors.js';
import type { BrokerNode } from '../src/broker/broker-node.js';
import type { ClassicJoinAnswer } from '../src/group/classic-group.js';
import { readBatches } from './batches.js';
import type { SeededRng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export type ClassicViolationKind = 'classic-two-owners' | 'classic-stale-commit' | 'classic-commit-regress' | 'liveness';

export interface ClassicSimPorts {
  readonly scheduler: Scheduler;
  readonly rng: SeededRng;
  /** Running, unpaused nodes, with a generation that changes when one restarts. */
  readonly nodes: () => ReadonlyArray<{ id: number; node: BrokerNode; generation: number }>;
  readonly topic: string;
  readonly partitions: number;
  /** Whether the nemesis is done: members stop dying, and the dead come back. */
  readonly healed: () => boolean;
  /** Members work until the final check is done or this virtual time. */
  readonly stopMs: number;
  readonly violation: (kind: ClassicViolationKind, text: string) => void;
  /** A record a member was given, for the data history's checks too. */
  readonly read: (partition: number, offset: number, value: string) => void;
}

export interface ClassicCounts {
  readonly members: number;
  /** Distinct generations members were answered a join for. */
  readonly generations: number;
  readonly delivered: number;
  readonly commitsAcknowledged: number;
  /** Commits refused (stale generation, rebalancing, unknown member, coordinator moving). */
  readonly commitsRefused: number;
  /** Members that died (left or went silent) and came back as new ones. */
  readonly deaths: number;
  /** Times a member looked for the coordinator again (a coordinator error or a timeout). */
  readonly lookups: number;
}

export const CLASSIC_GROUP = 'sim-classic';
const PROTOCOL_TYPE = 'consumer';
const PROTOCOL = 'range';
const SESSION_MS = 6000;
const REBALANCE_MS = 5000;
const TICK_MS = 250;
/** Kafka's client waits a join (and sync) for the rebalance timeout plus its request timeout. */
const JOIN_TIMEOUT_MS = REBALANCE_MS + 5000;
const CALL_TIMEOUT_MS = 5000;
const RETRY_BACKOFF_MS = 200;
const COMMIT_EVERY_TICKS = 4;
const FETCH_BYTES_MAX = 64 * 1024;
const DEATH_PER_TICK = 0.004;
const REBIRTH_PER_TICK = 0.05;
/** How often the final check looks whether the group has caught up. */
const CHECK_POLL_MS = 250;

type Phase = 'unjoined' | 'joining' | 'syncing' | 'stable';

interface Held {
  /** Next offset to read; null until the committed offset is known. */
  position: number | null;
  fetching: boolean;
}

interface Member {
  readonly name: string;
  alive: boolean;
  /** Bumped when the member dies or starts over: answers to older requests are ignored. */
  incarnation: number;
  /** '' until the coordinator gives one. */
  memberId: string;
  generation: number;
  phase: Phase;
  retryAtMs: number;
  heartbeatInFlight: boolean;
  coordinatorId: number | null;
  readonly held: Map<number, Held>;
  ticks: number;
}

interface Target { readonly id: number; readonly node: BrokerNode; readonly generation: number }

export class ClassicGroupWorkload {
  private readonly members: Member[];
  /** The highest generation any member was answered a join for, so far. */
  private joinedGenerationMax = -1;
  private readonly generations = new Set<number>();
  /** Per generation: the members its leader was given. */
  private readonly generationMembers = new Map<number, readonly string[]>();
  /** Per generation: which member its SyncGroup answers gave each partition. */
  private readonly syncOwners = new Map<number, Map<number, string>>();
  /** Per partition: acknowledged commits and when they were acknowledged. */
  private readonly acked = new Map<number, Array<{ offset: number; atMs: number }>>();
  private readonly delivered: Array<Set<number>>;
  private deliveredCount = 0;
  private commitsAcknowledged = 0;
  private commitsRefused = 0;
  private deaths = 0;
  private lookups = 0;
  private finished = false;

  constructor(private readonly ports: ClassicSimPorts, memberCount: number) {
    assert(memberCount > 0);
    this.members = Array.from({ length: memberCount }, (_, i) => ({
      name: `c${i}`, alive: true, incarnation: 0, memberId: '', generation: -1, phase: 'unjoined', retryAtMs: 0, heartbeatInFlight: false, coordinatorId: null, held: new Map(), ticks: 0,
    }));
    this.delivered = Array.from({ length: ports.partitions }, () => new Set<number>());
  }

  start(): void {
    for (const member of this.members) this.schedule(member, 1 + this.ports.rng.int(TICK_MS));
  }

  private schedule(member: Member, delayMs: number): void {
    this.ports.scheduler.after(delayMs, `classic ${member.name}`, () => {
      if (this.finished || this.ports.scheduler.nowMs >= this.ports.stopMs) return;
      this.tick(member);
      this.schedule(member, TICK_MS);
    });
  }

  private tick(member: Member): void {
    const now = this.ports.scheduler.nowMs;
    member.ticks += 1;
    if (!member.alive) {
      if (this.ports.healed() || this.ports.rng.chance(REBIRTH_PER_TICK)) member.alive = true; // a new process, a new member
      return;
    }
    if (!this.ports.healed() && member.memberId !== '' && this.ports.rng.chance(DEATH_PER_TICK)) {
      this.die(member);
      return;
    }
    if (member.phase === 'unjoined' && now >= member.retryAtMs) this.join(member);
    if (member.phase !== 'stable') return;
    if (!member.heartbeatInFlight) this.heartbeat(member);
    // Commits first: a fetch in flight makes a partition's position unsettled.
    if (member.ticks % COMMIT_EVERY_TICKS === 0) this.commit(member);
    for (const [partition, held] of member.held) if (held.position !== null && !held.fetching) this.fetch(member, partition, held);
  }

  /** Half the deaths say goodbye (LeaveGroup), half go silent and leave a session to expire. */
  private die(member: Member): void {
    const memberId = member.memberId;
    const leaves = this.ports.rng.chance(0.5);
    this.ports.scheduler.record(`classic ${member.name} dies (${leaves ? 'leaves' : 'silent'}) as ${memberId}`);
    if (leaves) this.call(member, CALL_TIMEOUT_MS, (node) => node.groups.leaveClassic(CLASSIC_GROUP, [memberId]), () => undefined);
    this.startOver(member, '');
    member.alive = false;
    this.deaths += 1;
  }

  /** Gives up every partition and forgets the generation; the member joins again (as `memberId`). */
  private startOver(member: Member, memberId: string): void {
    member.held.clear();
    member.incarnation += 1;
    member.memberId = memberId;
    member.generation = -1;
    member.phase = 'unjoined';
    member.heartbeatInFlight = false;
    member.retryAtMs = 0;
  }

  private backOff(member: Member): void {
    member.phase = 'unjoined';
    member.retryAtMs = this.ports.scheduler.nowMs + RETRY_BACKOFF_MS;
  }

  // --- calls to the coordinator ---

  /** The node the member believes coordinates: the one it found last, or some node's view now. */
  private coordinator(member: Member): Target | null {
    const nodes = this.ports.nodes();
    if (member.coordinatorId === null) {
      const asked = nodes[this.ports.rng.int(Math.max(1, nodes.length))];
      if (asked === undefined) return null;
      try {
        member.coordinatorId = asked.node.groups.coordinatorFor(CLASSIC_GROUP).coordinatorId;
      } catch {
        return null;
      }
    }
    const target = nodes.find((n) => n.id === member.coordinatorId);
    // Down or paused: the connection fails, and the client looks again.
    if (target === undefined) this.lookAgain(member);
    return target ?? null;
  }

  private lookAgain(member: Member): void {
    if (member.coordinatorId !== null) this.lookups += 1;
    member.coordinatorId = null;
  }

  /**
   * Runs a call with the client's timeout; `then` sees the answer (null: timed out, or the node
   * died or restarted meanwhile) only while the member is the same incarnation, unless
   * `anyIncarnation` (an answer that is a fact about the coordinator whatever the member did
   * since). Coordinator errors and timeouts make the member look for the coordinator again.
   */
  private call<T>(member: Member, timeoutMs: number, work: (node: BrokerNode) => Promise<T>, then: (answer: T | DriftwoodError | null, sentMs: number, nodeId: number) => void, anyIncarnation = false): void {
    const target = this.coordinator(member);
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
      if (answer === null || (answer instanceof DriftwoodError && coordinatorErrors.has(answer.code))) {
        if (member.coordinatorId === target.id) this.lookAgain(member);
      }
      if (!anyIncarnation && member.incarnation !== incarnation) return;
      then(answer, sentMs, target.id);
    };
    const timer = this.ports.scheduler.after(timeoutMs, 'classic call timeout', () => { finish(null); });
    work(target.node).then(
      (answer) => { finish(this.nodeSame(target) ? answer : null); },
      (error: unknown) => { finish(error instanceof DriftwoodError && this.nodeSame(target) ? error : null); },
    );
  }

  private nodeSame(target: Target): boolean {
    return this.ports.nodes().some((n) => n.id === target.id && n.generation === target.generation);
  }

  // --- the classic protocol, as a Kafka consumer runs it ---

  private join(member: Member): void {
    member.phase = 'joining';
    const request = {
      memberId: member.memberId,
      clientId: member.name,
      clientHost: '/sim',
      protocolType: PROTOCOL_TYPE,
      protocols: [{ name: PROTOCOL, metadata: Buffer.from(JSON.stringify({ topics: [this.ports.topic] })) }],
      sessionTimeoutMs: SESSION_MS,
      rebalanceTimeoutMs: REBALANCE_MS,
      requireKnownMemberId: true,
    };
    this.call(member, JOIN_TIMEOUT_MS, (node) => node.groups.joinClassic(CLASSIC_GROUP, request), (answer, _sentMs, nodeId) => {
      if (answer === null) {
        this.backOff(member);
      } else if (answer instanceof DriftwoodError) {
        this.joinRefused(member, answer);
      } else {
        this.joined(member, answer, nodeId);
      }
    });
  }

  private joinRefused(member: Member, error: DriftwoodError): void {
    const given = error.hints['memberId'];
    if (error.code === 'MEMBER_ID_REQUIRED' && typeof given === 'string') {
      // KIP-394: the id to join with; the member joins again at once.
      member.memberId = given;
      member.phase = 'unjoined';
      this.join(member);
      return;
    }
    if (error.code === 'UNKNOWN_MEMBER_ID') member.memberId = '';
    this.backOff(member);
  }

  private joined(member: Member, answer: ClassicJoinAnswer, nodeId: number): void {
    assert.equal(answer.protocolName, PROTOCOL);
    const generation = answer.generationId;
    this.joinedGenerationMax = Math.max(this.joinedGenerationMax, generation);
    this.generations.add(generation);
    member.memberId = answer.memberId;
    member.generation = generation;
    member.phase = 'syncing';
    const leads = answer.leader === answer.memberId;
    this.ports.scheduler.record(`classic ${member.name} joined generation ${generation} as ${answer.memberId}${leads ? ` (leader of ${answer.members.length})` : ''} at n${nodeId}`);
    const assignments = leads ? this.assign(generation, answer.members.map((m) => m.memberId)) : [];
    this.sync(member, assignments);
  }

  /** Kafka's range assignor: members by id, each a run of partitions, the first ones one more. */
  private assign(generation: number, memberIds: readonly string[]): Array<{ memberId: string; assignment: Buffer }> {
    const sorted = [...memberIds].sort();
    this.generationMembers.set(generation, sorted);
    const share = Math.floor(this.ports.partitions / sorted.length);
    const extra = this.ports.partitions % sorted.length;
    let next = 0;
    return sorted.map((memberId, i) => {
      const count = share + (i < extra ? 1 : 0);
      const partitions = Array.from({ length: count }, (_, k) => next + k);
      next += count;
      return { memberId, assignment: encodeAssignment(this.ports.topic, partitions) };
    });
  }

  private sync(member: Member, assignments: Array<{ memberId: string; assignment: Buffer }>): void {
    const { memberId, generation } = member;
    this.call(member, JOIN_TIMEOUT_MS, (node) => node.groups.syncClassic(CLASSIC_GROUP, memberId, generation, assignments), (answer) => {
      if (member.phase !== 'syncing' || member.generation !== generation) return;
      if (answer === null) {
        this.backOff(member);
      } else if (answer instanceof DriftwoodError) {
        if (answer.code === 'UNKNOWN_MEMBER_ID') member.memberId = '';
        this.backOff(member);
      } else {
        this.synced(member, decodeAssignment(answer.assignment, this.ports.topic));
      }
    });
  }

  private synced(member: Member, partitions: readonly number[]): void {
    const generation = member.generation;
    const owners = this.syncOwners.get(generation) ?? new Map<number, string>();
    this.syncOwners.set(generation, owners);
    for (const partition of partitions) {
      const other = owners.get(partition);
      if (other !== undefined && other !== member.memberId) {
        this.ports.violation('classic-two-owners', `${CLASSIC_GROUP} generation ${generation}: ${this.ports.topic}-${partition} was given to ${member.memberId} (${member.name}) and to ${other}`);
      }
      owners.set(partition, member.memberId);
    }
    this.ports.scheduler.record(`classic ${member.name} synced generation ${generation}: [${partitions.join(',')}]`);
    member.phase = 'stable';
    for (const partition of partitions) {
      const held = { position: null, fetching: false };
      member.held.set(partition, held);
      this.startAtCommitted(member, partition, held);
    }
  }

  private heartbeat(member: Member): void {
    const { memberId, generation } = member;
    member.heartbeatInFlight = true;
    this.call(member, CALL_TIMEOUT_MS, (node) => node.groups.heartbeatClassic(CLASSIC_GROUP, memberId, generation), (answer) => {
      if (member.phase !== 'stable' || member.generation !== generation) return;
      member.heartbeatInFlight = false;
      if (!(answer instanceof DriftwoodError)) return;
      if (answer.code === 'REBALANCE_IN_PROGRESS' || answer.code === 'ILLEGAL_GENERATION') {
        // Eager rebalancing: commit where it got to, give everything up, join again.
        this.commit(member);
        this.ports.scheduler.record(`classic ${member.name} rejoins (${answer.code})`);
        this.startOver(member, memberId);
      } else if (answer.code === 'UNKNOWN_MEMBER_ID') {
        this.ports.scheduler.record(`classic ${member.name} joins anew (${answer.code})`);
        this.startOver(member, '');
      }
    });
  }

  private commit(member: Member): void {
    const { memberId, generation } = member;
    const offsets = [...member.held].filter(([, held]) => held.position !== null && !held.fetching).map(([partition, held]) => ({ topic: this.ports.topic, partition, offset: held.position ?? 0 }));
    if (offsets.length === 0 || memberId === '' || generation < 0) return;
    // What the coordinator had promised by the time the commit left.
    const laterJoinAnswered = this.joinedGenerationMax;
    const sentMs = this.ports.scheduler.nowMs;
    const committer = { memberId, generationId: generation };
    this.call(member, CALL_TIMEOUT_MS, (node) => node.groups.commitClassic(CLASSIC_GROUP, committer, offsets), (answer, _sent, nodeId) => {
      if (answer === null || answer instanceof DriftwoodError) {
        this.commitsRefused += 1;
        return;
      }
      if (laterJoinAnswered > generation) {
        this.ports.violation('classic-stale-commit', `${CLASSIC_GROUP}: a commit of ${memberId} for generation ${generation}, sent at ${sentMs.toFixed(0)} ms, was acknowledged by n${nodeId} although a join for generation ${laterJoinAnswered} had been answered before it was sent`);
      }
      const atMs = this.ports.scheduler.nowMs;
      this.ports.scheduler.record(`classic ${member.name} committed ${offsets.map((o) => `${o.partition}@${o.offset}`).join(',')} generation ${generation} (n${nodeId})`);
      for (const o of offsets) {
        const list = this.acked.get(o.partition) ?? [];
        list.push({ offset: o.offset, atMs });
        this.acked.set(o.partition, list);
        this.commitsAcknowledged += 1;
      }
    }, true);
  }

  private startAtCommitted(member: Member, partition: number, held: Held): void {
    this.call(member, CALL_TIMEOUT_MS, (node) => node.groups.fetchOffsets(CLASSIC_GROUP, this.ports.topic), (answer, sentMs, nodeId) => {
      if (member.held.get(partition) !== held) return;
      if (answer === null || answer instanceof DriftwoodError) {
        this.ports.scheduler.after(RETRY_BACKOFF_MS, 'classic offsets retry', () => { if (member.held.get(partition) === held) this.startAtCommitted(member, partition, held); });
        return;
      }
      const committed = answer.offsets.find((o) => o.partition === partition)?.offset ?? 0;
      const before = this.ackedMax(partition, sentMs);
      if (committed < before) this.ports.violation('classic-commit-regress', `${CLASSIC_GROUP} ${this.ports.topic}-${partition}: committed ${committed} fetched from n${nodeId}, ${before} was acknowledged before`);
      this.ports.scheduler.record(`classic ${member.name} starts ${this.ports.topic}-${partition} at committed ${committed} (n${nodeId})`);
      held.position = committed;
    });
  }

  /** The highest commit acknowledged by `atMs` (all of them by default). */
  private ackedMax(partition: number, atMs = Number.POSITIVE_INFINITY): number {
    return (this.acked.get(partition) ?? []).filter((a) => a.atMs <= atMs).reduce((max, a) => Math.max(max, a.offset), 0);
  }

  private fetch(member: Member, partition: number, held: Held): void {
    const from = held.position;
    if (from === null) return;
    const leaders = this.ports.nodes().filter((n) => n.node.replicas.partition(n.node.image.topic(this.ports.topic)?.topicId ?? '', partition)?.isLeader === true);
    const leader = leaders[this.ports.rng.int(Math.max(1, leaders.length))];
    if (leader === undefined) return;
    held.fetching = true;
    leader.node.replicas.consume(this.ports.topic, partition, from, { bytesMax: FETCH_BYTES_MAX, minBytes: 1, maxWaitMs: 0 }).then(
      (read) => {
        held.fetching = false;
        // Only what a member holding the partition now reads counts as given to the group.
        if (member.held.get(partition) !== held || held.position !== from || !this.nodeSame(leader)) return;
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

  // --- the final check ---

  /**
   * After healing, given the data partitions' high watermarks: waits (until `deadlineMs`)
   * for every member in one generation formed of exactly them, everything below the high
   * watermarks delivered and committed, and the committed offsets at least every acknowledged
   * commit; a liveness violation says which was still missing at the deadline.
   */
  async check(highWatermarks: readonly number[], deadlineMs: number): Promise<ClassicCounts> {
    let missing = 'nothing asked yet';
    while (this.ports.scheduler.nowMs < deadlineMs) {
      missing = this.formed() ?? this.consumed(highWatermarks) ?? await this.committed(highWatermarks);
      if (missing === 'done') break;
      await new Promise<void>((resolve) => { this.ports.scheduler.after(CHECK_POLL_MS, 'classic check poll', resolve); });
    }
    this.finished = true;
    if (missing !== 'done') this.ports.violation('liveness', `${CLASSIC_GROUP}: not caught up by ${deadlineMs} ms after healing (high watermarks ${highWatermarks.join(',')}): ${missing}`);
    return this.counts();
  }

  counts(): ClassicCounts {
    return { members: this.members.length, generations: this.generations.size, delivered: this.deliveredCount, commitsAcknowledged: this.commitsAcknowledged, commitsRefused: this.commitsRefused, deaths: this.deaths, lookups: this.lookups };
  }

  /** Null when every member is stable in one generation its leader was given exactly them for; else what is missing. */
  private formed(): string | null {
    const generation = this.members[0]?.generation ?? -1;
    const states = this.members.map((m) => `${m.name} ${m.alive ? m.phase : 'dead'} g${m.generation}`).join(', ');
    if (!this.members.every((m) => m.alive && m.phase === 'stable' && m.generation === generation)) return `members not stable in one generation (${states})`;
    const expected = [...this.members.map((m) => m.memberId)].sort();
    const given = this.generationMembers.get(generation);
    if (given === undefined || given.join(',') !== expected.join(',')) return `generation ${generation}'s leader was given [${given?.join(',') ?? '?'}], the live members are [${expected.join(',')}]`;
    return null;
  }

  private consumed(highWatermarks: readonly number[]): string | null {
    for (let partition = 0; partition < this.ports.partitions; partition += 1) {
      const hw = highWatermarks[partition] ?? 0;
      const given = this.delivered[partition] ?? new Set<number>();
      for (let offset = 0; offset < hw; offset += 1) if (!given.has(offset)) return `${this.ports.topic}-${partition}: offset ${offset} (below the high watermark ${hw}) not delivered to the group`;
    }
    return null;
  }

  /** 'done' when the coordinator's offsets reach the high watermarks and every acknowledged commit. */
  private async committed(highWatermarks: readonly number[]): Promise<string> {
    const holder = this.members[0];
    if (holder === undefined) return 'no member';
    const answer = await new Promise<Awaited<ReturnType<BrokerNode['groups']['fetchOffsets']>> | DriftwoodError | null>((resolve) => {
      this.call(holder, CALL_TIMEOUT_MS, (node) => node.groups.fetchOffsets(CLASSIC_GROUP, this.ports.topic), resolve, true);
    });
    if (answer === null || answer instanceof DriftwoodError) return `the coordinator did not answer an offset fetch (${answer?.code ?? 'timed out'})`;
    for (let partition = 0; partition < this.ports.partitions; partition += 1) {
      const committed = answer.offsets.find((o) => o.partition === partition)?.offset ?? 0;
      const acked = this.ackedMax(partition);
      if (committed < acked) {
        this.ports.violation('classic-commit-regress', `${CLASSIC_GROUP} ${this.ports.topic}-${partition}: final committed ${committed} is below the acknowledged ${acked}`);
        return 'done';
      }
      const hw = highWatermarks[partition] ?? 0;
      if (committed < hw) return `${this.ports.topic}-${partition}: committed ${committed}, high watermark ${hw}`;
    }
    return 'done';
  }
}

/** Errors after which a Kafka client finds the coordinator again. */
const coordinatorErrors = new Set(['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS']);

/** The leader's opaque assignment bytes: the topic and the member's partitions. */
function encodeAssignment(topic: string, partitions: readonly number[]): Buffer {
  return Buffer.from(JSON.stringify({ topic, partitions }), 'utf8');
}

function decodeAssignment(bytes: Buffer, topic: string): number[] {
  // A member the leader left out gets no bytes (the coordinator's empty assignment).
  if (bytes.length === 0) return [];
  const decoded = JSON.parse(bytes.toString('utf8')) as { topic: unknown; partitions: unknown };
  assert.equal(decoded.topic, topic);
  assert(Array.isArray(decoded.partitions) && decoded.partitions.every((p) => Number.isSafeInteger(p)));
  return decoded.partitions as number[];
}
