// The member side of the consumer-group protocol (KIP-848 style: the coordinator assigns,
// members reconcile). One heartbeat at a time: join with epoch 0 (memberId null the first time), then
// heartbeat every heartbeatIntervalMs with what the member owns. An answer's assignment is
// the full set the member may own: partitions missing from it are revoked (stop fetching,
// commit, then heartbeat at once without them, so the coordinator can hand them on), new
// ones are taken up. Fenced (UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH) or silent for a whole
// session, the member drops everything without committing and joins again, naming the id it
// had so that the coordinator frees that id's partitions at once.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { isCoordinatorMoved, type GroupCoordinator } from './coordinator.js';
import { partitionKey, type TopicPartition } from './fetcher.js';
import type { ResolvedClientOptions } from './options.js';
import { asDriftwoodError, backoffMs, isRetriable, monotonicMs, type Timers } from './retry.js';

export type Assignor = 'range' | 'roundrobin';

export interface MemberHooks {
  /** The partitions the consumer holds now. */
  owned(): TopicPartition[];
  /** Partitions taken away: stop fetching them and commit their positions if committing; resolves before the member acknowledges. */
  revoke(partitions: TopicPartition[]): Promise<void>;
  /** Partitions given: fetch them from their committed offsets (or the reset policy). */
  assign(partitions: TopicPartition[]): Promise<void>;
  /** Every partition is gone without a commit (the member was fenced or its session ran out). */
  lose(reason: DriftwoodError): void;
  /** The group refused the member for good (GROUP_MAX_SIZE_REACHED, INVALID_GROUP_ID, ...): poll() raises it. */
  fatal(error: DriftwoodError): void;
  /** A failure the member recovers from by itself, for the application to log. */
  warn(error: DriftwoodError): void;
}

export interface MemberConfig {
  readonly sessionTimeoutMs: number;
  readonly assignor: Assignor;
}

interface HeartbeatAnswer {
  readonly memberId: string;
  readonly memberEpoch: number;
  readonly heartbeatIntervalMs: number;
  readonly assignment: TopicPartition[];
}

/** Partitions one assignment may hold (a bound on what the client accepts). */
const ASSIGNMENT_PARTITIONS_MAX = 1_000_000;
const LEAVE_EPOCH = -1;

export class GroupMember {
  private memberIdValue: string | null = null;
  /** The id this member had before it dropped out, named when it joins again so the coordinator frees what that id held. */
  private previousMemberId: string | null = null;
  private memberEpochValue = 0;
  private subscription: readonly string[];
  /** The coordinator has the current subscription (it was in an answered heartbeat). */
  private subscriptionSent = false;
  private heartbeatIntervalMs = 0;
  /** Bumped whenever the member drops out, so an answer to a heartbeat from before is ignored. */
  private incarnation = 0;
  private failures = 0;
  private stopped = false;
  private beating: Promise<void> | null = null;
  private again = false;
  private cancelBeat: () => void = () => undefined;
  private cancelSession: () => void = () => undefined;

  constructor(
    private readonly coordinator: GroupCoordinator,
    private readonly client: ResolvedClientOptions,
    private readonly config: MemberConfig,
    private readonly timers: Timers,
    private readonly hooks: MemberHooks,
    topics: readonly string[],
  ) {
    this.subscription = [...topics];
  }

  get memberId(): string | null {
    return this.memberIdValue;
  }

  get memberEpoch(): number {
    return this.memberEpochValue;
  }

  start(): void {
    this.schedule(0);
  }

  subscribe(topics: readonly string[]): void {
    this.subscription = [...topics];
    this.subscriptionSent = false;
    this.heartbeatNow();
  }

  /** Heartbeats as soon as the one in flight (if any) is answered. */
  heartbeatNow(): void {
    if (this.stopped) return;
    if (this.beating !== null) this.again = true;
    else this.schedule(0);
  }

  /** Stops heartbeating and waits for the heartbeat in flight; the member is still in the group until leave(). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelBeat();
    this.cancelSession();
    await this.beating;
  }

  /** Tells the coordinator the member leaves (epoch -1), once; its partitions go to others at once. */
  async leave(): Promise<void> {
    assert(this.stopped, 'stop() before leave()');
    const memberId = this.memberIdValue;
    if (memberId === null) return;
    this.memberIdValue = null;
    try {
      await this.coordinator.requestOnce({ method: 'POST', path: `${this.coordinator.path}/heartbeat`, body: { memberId, memberEpoch: LEAVE_EPOCH }, timeoutMs: this.client.requestTimeoutMs });
    } catch (error) {
      // The session will expire at the coordinator instead.
      this.hooks.warn(asDriftwoodError(error));
    }
  }

  private schedule(delayMs: number): void {
    this.cancelBeat();
    if (this.stopped || delayMs === Infinity) return;
    this.cancelBeat = this.timers.after(delayMs, () => { this.beat(); });
  }

  private beat(): void {
    if (this.stopped || this.beating !== null) return;
    this.again = false;
    this.beating = this.beatOnce()
      .then((nextMs) => nextMs, (error: unknown) => {
        // A hook that throws is a bug in the application's callback: surface it, keep the member going.
        this.hooks.warn(asDriftwoodError(error));
        return backoffMs(this.failures, this.client);
      })
      .then((nextMs) => {
        this.beating = null;
        this.schedule(this.again ? 0 : nextMs);
      });
  }

  /** One heartbeat and what follows from its answer; returns the delay to the next one. */
  private async beatOnce(): Promise<number> {
    const incarnation = this.incarnation;
    const subscription = this.subscription;
    const joining = this.memberIdValue === null;
    const body = joining
      ? { memberId: this.previousMemberId, memberEpoch: 0, clientId: this.client.clientId, subscribedTopics: subscription, sessionTimeoutMs: this.config.sessionTimeoutMs, assignor: this.config.assignor }
      : { memberId: this.memberIdValue, memberEpoch: this.memberEpochValue, ownedPartitions: byTopic(this.hooks.owned()), ...(this.subscriptionSent ? {} : { subscribedTopics: subscription }) };
    let answer: HeartbeatAnswer;
    // The coordinator times the session from when it handled this heartbeat, which is no
    // earlier than now: counting from the send keeps this member's deadline before its own.
    const sentMs = monotonicMs();
    try {
      const timeoutMs = Math.min(this.client.requestTimeoutMs, this.config.sessionTimeoutMs);
      answer = parseHeartbeat(await this.coordinator.requestOnce<unknown>({ method: 'POST', path: `${this.coordinator.path}/heartbeat`, body, timeoutMs }));
    } catch (error) {
      if (incarnation !== this.incarnation) return 0;
      return this.failed(asDriftwoodError(error));
    }
    if (incarnation !== this.incarnation) return 0;
    const sessionLeftMs = this.config.sessionTimeoutMs - (monotonicMs() - sentMs);
    // An answer that took a whole session proves nothing about the session now.
    if (sessionLeftMs <= 0) return 0;
    this.failures = 0;
    if (joining) this.previousMemberId = null;
    this.memberIdValue = answer.memberId;
    this.memberEpochValue = answer.memberEpoch;
    this.heartbeatIntervalMs = answer.heartbeatIntervalMs;
    if (subscription === this.subscription) this.subscriptionSent = true;
    this.armSession(sessionLeftMs);
    if (this.stopped) return Infinity;
    const changed = await this.reconcile(answer.assignment);
    return changed ? 0 : this.heartbeatIntervalMs;
  }

  /** Revokes what the assignment no longer holds, then takes up what is new; whether anything changed. */
  private async reconcile(assignment: TopicPartition[]): Promise<boolean> {
    const target = new Set(assignment.map((tp) => partitionKey(tp.topic, tp.partition)));
    const owned = this.hooks.owned();
    const ownedKeys = new Set(owned.map((tp) => partitionKey(tp.topic, tp.partition)));
    const revoked = owned.filter((tp) => !target.has(partitionKey(tp.topic, tp.partition)));
    const added = assignment.filter((tp) => !ownedKeys.has(partitionKey(tp.topic, tp.partition)));
    if (revoked.length > 0) await this.hooks.revoke(revoked);
    if (added.length > 0) await this.hooks.assign(added);
    return revoked.length > 0 || added.length > 0;
  }

  private failed(error: DriftwoodError): number {
    if (error.code === 'UNKNOWN_MEMBER_ID' || error.code === 'FENCED_MEMBER_EPOCH') {
      this.dropOut(error);
      // Join again at once, but not in a tight loop if the coordinator keeps refusing.
      return this.failures++ === 0 ? 0 : backoffMs(this.failures - 1, this.client);
    }
    // Only a refusal that no retry can change ends the membership: anything a retry may get
    // past (a coordinator moving or starting, a write it could not make durable yet) would
    // otherwise stop the member for good while its coordinator recovers.
    if (isCoordinatorMoved(error) || isRetriable(error) || error.code === 'CLIENT_CLOSED') {
      this.hooks.warn(error);
      return backoffMs(this.failures++, this.client);
    }
    this.hooks.fatal(error);
    return Infinity;
  }

  /** Drops every partition without committing and forgets the membership: the next heartbeat joins. */
  private dropOut(reason: DriftwoodError): void {
    this.incarnation += 1;
    this.previousMemberId = this.memberIdValue ?? this.previousMemberId;
    this.memberIdValue = null;
    this.memberEpochValue = 0;
    this.subscriptionSent = false;
    this.cancelSession();
    this.hooks.lose(reason);
  }

  /** When the session the last answered heartbeat renewed runs out, the coordinator may have removed the member: act as removed. */
  private armSession(leftMs: number): void {
    this.cancelSession();
    this.cancelSession = this.timers.after(leftMs, () => {
      if (this.memberIdValue === null || this.stopped) return;
      this.dropOut(new DriftwoodError('UNKNOWN_MEMBER_ID', `no heartbeat was answered for sessionTimeoutMs ${this.config.sessionTimeoutMs}; the member rejoins`));
      this.heartbeatNow();
    });
  }
}

export function byTopic(partitions: readonly TopicPartition[]): Array<{ topic: string; partitions: number[] }> {
  const grouped = new Map<string, number[]>();
  for (const tp of partitions) grouped.set(tp.topic, [...(grouped.get(tp.topic) ?? []), tp.partition]);
  return [...grouped].map(([topic, numbers]) => ({ topic, partitions: numbers.sort((a, b) => a - b) }));
}

function parseHeartbeat(raw: unknown): HeartbeatAnswer {
  const bad = (): DriftwoodError => new DriftwoodError('CORRUPT_MESSAGE', 'the heartbeat answer is not what the client expects');
  const answer = raw as { memberId?: unknown; memberEpoch?: unknown; heartbeatIntervalMs?: unknown; assignment?: unknown } | null;
  if (answer === null || typeof answer !== 'object' || typeof answer.memberId !== 'string' || !Number.isInteger(answer.memberEpoch)) throw bad();
  if (!Number.isInteger(answer.heartbeatIntervalMs) || (answer.heartbeatIntervalMs as number) <= 0 || !Array.isArray(answer.assignment)) throw bad();
  const assignment: TopicPartition[] = [];
  for (const entry of answer.assignment as unknown[]) {
    const { topic, partitions } = (entry ?? {}) as { topic?: unknown; partitions?: unknown };
    if (typeof topic !== 'string' || !Array.isArray(partitions)) throw bad();
    for (const partition of partitions as unknown[]) {
      if (!Number.isInteger(partition) || (partition as number) < 0) throw bad();
      assignment.push({ topic, partition: partition as number });
    }
    if (assignment.length > ASSIGNMENT_PARTITIONS_MAX) throw bad();
  }
  return { memberId: answer.memberId, memberEpoch: answer.memberEpoch as number, heartbeatIntervalMs: answer.heartbeatIntervalMs as number, assignment };
}

export function isFencedError(error: unknown): boolean {
  return isDriftwoodError(error) && (error.code === 'UNKNOWN_MEMBER_ID' || error.code === 'FENCED_MEMBER_EPOCH');
}
