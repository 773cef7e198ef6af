// Property test of Kafka's classic group protocol (src/group/classic-group.ts): one group
// driven by random command sequences from 2-5 clients (joins in both the v4 two-step and the
// v0-3 one-step form, rejoins with the same, changed or unshared protocols, syncs from leaders
// and followers with current and stale generations, heartbeats, leaves, commit checks, time
// moving on in small and large steps, and coordinator failovers through persisted() -> JSON ->
// restore() into a fresh group). After every step the group's state is checked against what
// the clients were told; at the end, after time moves far on, no join or sync may still wait.
//
// A failure prints fast-check's seed and path; replay it with
//   CLASSIC_SEED=<seed> CLASSIC_PATH=<path> npx tap --disable-coverage test/group/classic-group.property.test.ts
// CLASSIC_RUNS=<n> changes the number of runs.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { ClassicGroup, defaultClassicGroupLimits, type ClassicGroupLimits, type ClassicGroupState, type ClassicJoinAnswer, type ClassicJoinRequest, type PersistedClassicGroup } from '../../src/group/classic-group.js';
import { DriftwoodError, type ErrorCode } from '../../storage/errors.js';

const RUNS = Number(process.env.CLASSIC_RUNS ?? 3000);
const EMPTY = Buffer.alloc(0);
/** Far beyond every session, rebalance timeout and initial delay drawn below. */
const FAR_MS = 1_000_000;

/** The codes each call may answer with; anything else (or a plain Error) is a bug. */
const joinCodes = new Set<ErrorCode>(['MEMBER_ID_REQUIRED', 'UNKNOWN_MEMBER_ID', 'INCONSISTENT_GROUP_PROTOCOL', 'INVALID_SESSION_TIMEOUT', 'INVALID_REQUEST', 'GROUP_MAX_SIZE_REACHED', 'NOT_COORDINATOR']);
const syncCodes = new Set<ErrorCode>(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS', 'INVALID_REQUEST', 'NOT_COORDINATOR']);
const heartbeatCodes = new Set<ErrorCode>(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS']);
const leaveCodes = new Set<ErrorCode>(['UNKNOWN_MEMBER_ID']);
const commitCodes = heartbeatCodes;

/** Protocol lists a client may join with, in its order of preference; 'solo' is shared by no other client. */
const protocolMenu: ReadonlyArray<readonly string[]> = [['range', 'roundrobin'], ['roundrobin', 'range'], ['range'], ['roundrobin'], ['sticky', 'range'], ['solo']];
const SAME_PROTOCOLS = protocolMenu.length;
const sessionMenuMs = [1000, 3000, 10_000, 30_000, 500 /* below the minimum: refused */];
const rebalanceMenuMs = [0, 1000, 5000, 20_000];

interface JoinParams { readonly c: number; readonly protocols: number; readonly metadataVersion: number; readonly session: number; readonly rebalance: number; readonly connect: boolean }
type GenChoice = 'known' | 'stale' | 'group';
type Op =
  | ({ readonly kind: 'joinNew'; readonly v4: boolean } & JoinParams)
  | ({ readonly kind: 'joinPending' } & JoinParams)
  | ({ readonly kind: 'rejoin' } & JoinParams)
  | { readonly kind: 'sync'; readonly c: number; readonly gen: GenChoice; readonly assign: 'all' | 'some' | 'none'; readonly ghost: boolean; readonly nonce: number }
  | { readonly kind: 'heartbeat'; readonly c: number; readonly gen: GenChoice }
  | { readonly kind: 'leave'; readonly cs: readonly number[] }
  | { readonly kind: 'commit'; readonly c: number; readonly gen: GenChoice; readonly outsider: boolean }
  | { readonly kind: 'tick'; readonly ms: number }
  /** What a well-behaved client does next: join, join with its id, rejoin when told to, sync after a join, else heartbeat. */
  | ({ readonly kind: 'next'; readonly v4: boolean; readonly nonce: number } & JoinParams)
  | { readonly kind: 'failover'; readonly ms: number };

const clientIndex = fc.integer({ min: 0, max: 4 });
const genChoice = fc.constantFrom<GenChoice>('known', 'known', 'known', 'stale', 'group');
const joinParams = fc.record({
  c: clientIndex,
  protocols: fc.oneof({ weight: 3, arbitrary: fc.constant(SAME_PROTOCOLS) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: protocolMenu.length - 1 }) }),
  metadataVersion: fc.constantFrom(0, 0, 0, 1),
  session: fc.constantFrom(0, 1, 2, 2, 3, 4),
  rebalance: fc.integer({ min: 0, max: rebalanceMenuMs.length - 1 }),
  connect: fc.constantFrom(false, false, false, false, false, false, false, true),
});
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 16, arbitrary: fc.tuple(joinParams, fc.boolean(), fc.nat(99)).map(([p, v4, nonce]): Op => ({ kind: 'next', v4, nonce, ...p, protocols: SAME_PROTOCOLS, session: Math.min(p.session, 3), connect: false })) },
  { weight: 1, arbitrary: fc.tuple(joinParams, fc.boolean()).map(([p, v4]): Op => ({ kind: 'joinNew', v4, ...p })) },
  { weight: 1, arbitrary: joinParams.map((p): Op => ({ kind: 'joinPending', ...p })) },
  { weight: 2, arbitrary: joinParams.map((p): Op => ({ kind: 'rejoin', ...p })) },
  { weight: 3, arbitrary: fc.record({ c: clientIndex, gen: genChoice, assign: fc.constantFrom('all' as const, 'all' as const, 'some' as const, 'none' as const), ghost: fc.boolean(), nonce: fc.nat(99) }).map((o): Op => ({ kind: 'sync', ...o })) },
  { weight: 3, arbitrary: fc.record({ c: clientIndex, gen: genChoice }).map((o): Op => ({ kind: 'heartbeat', ...o })) },
  { weight: 1, arbitrary: fc.uniqueArray(clientIndex, { minLength: 1, maxLength: 2 }).map((cs): Op => ({ kind: 'leave', cs })) },
  { weight: 2, arbitrary: fc.record({ c: clientIndex, gen: genChoice, outsider: fc.boolean() }).map((o): Op => ({ kind: 'commit', ...o })) },
  { weight: 4, arbitrary: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 800 }) }, { weight: 1, arbitrary: fc.integer({ min: 800, max: 40_000 }) }).map((ms): Op => ({ kind: 'tick', ms })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3000 }).map((ms): Op => ({ kind: 'failover', ms })) },
);
const limitsArbitrary: fc.Arbitrary<ClassicGroupLimits> = fc.record({
  membersMax: fc.constantFrom(3, 1000),
  initialRebalanceDelayMs: fc.constantFrom(0, 100, 3000),
}).map((l) => ({ ...defaultClassicGroupLimits, ...l }));
const scenarioArbitrary = fc.record({
  clients: fc.integer({ min: 2, max: 5 }),
  limits: limitsArbitrary,
  ops: fc.array(opArbitrary, { minLength: 1, maxLength: 80, size: 'max' }),
});
interface Scenario { readonly clients: number; readonly limits: ClassicGroupLimits; readonly ops: readonly Op[] }

interface Client {
  /** '' until it has one. */
  memberId: string;
  /** The id MEMBER_ID_REQUIRED gave it, to join with. */
  pendingId: string;
  generation: number;
  /** The members its last answer listed, when it led that generation. */
  leads: readonly string[] | null;
  protocols: readonly string[];
  metadataVersion: number;
  /** What its last answers told it to do next. */
  next: 'join' | 'sync' | 'heartbeat';
  /** Its joins and syncs not answered yet: a well-behaved client waits for them. */
  waiting: number;
}

interface Generation {
  readonly leader: string;
  readonly protocolName: string;
  readonly protocolType: string;
  /** The members when it formed, in order, with their metadata for the chosen protocol. */
  readonly members: ReadonlyArray<{ memberId: string; metadata: Buffer }>;
  /** Who got a join answer in it. */
  readonly answered: Set<string>;
  /** What its leader's SyncGroup handed out, once it did. */
  assigned: Map<string, Buffer> | null;
}

/** How often each thing happened over all runs, so the test shows it exercised what it claims. */
const seen = new Map<string, number>();
function count(name: string): void {
  seen.set(name, (seen.get(name) ?? 0) + 1);
}

const flush = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve); });

class Harness {
  group: ClassicGroup;
  nowMs = 0;
  private highestGeneration = 0;
  private readonly clients: Client[];
  private readonly generations = new Map<number, Generation>();
  /** Unsettled joins and syncs, with the group instance that holds them. */
  private readonly pending = new Map<number, { label: string; group: ClassicGroup }>();
  private pendingCounter = 0;
  private readonly failures: string[] = [];
  /** Ids the group ever handed out: the coordinator's are random, so they never repeat (across failovers too). */
  private readonly issuedIds = new Set<string>();
  private idCounter = 0;
  private justFormed: number | null = null;
  /** A lower bound of when each member's session ends, from what the group must have seen of it. */
  private readonly aliveUntilMs = new Map<string, number>();
  private readonly newMemberId = (clientId: string): string => {
    this.idCounter += 1;
    return `${clientId}~${this.idCounter}`;
  };

  constructor(clientCount: number, private readonly limits: ClassicGroupLimits) {
    this.group = new ClassicGroup('g', limits, this.newMemberId);
    this.clients = Array.from({ length: clientCount }, () => ({ memberId: '', pendingId: '', generation: -1, leads: null, protocols: ['range', 'roundrobin'], metadataVersion: 0, next: 'join', waiting: 0 }));
  }

  async step(op: Op): Promise<void> {
    const before = { state: this.group.state, generation: this.group.generationId };
    switch (op.kind) {
      case 'joinNew': case 'joinPending': case 'rejoin': this.join(op); break;
      case 'sync': this.sync(op); break;
      case 'heartbeat': this.heartbeat(op); break;
      case 'leave': this.leave(op.cs); break;
      case 'commit': this.commit(op); break;
      case 'tick': this.tick(op.ms); break;
      case 'failover': await this.failover(op.ms); break;
      case 'next': this.next(op); break;
    }
    this.noteFormed(before);
    await flush();
    this.check(before, op);
  }

  /** Time moves far beyond every timeout: whatever waited is answered. */
  async finish(): Promise<void> {
    const before = { state: this.group.state, generation: this.group.generationId };
    this.nowMs += FAR_MS;
    this.group.tick(this.nowMs);
    this.noteFormed(before);
    await flush();
    this.check(before, { kind: 'tick', ms: FAR_MS });
    this.expect(this.pending.size === 0, `still waiting after a tick far beyond every timeout: ${[...this.pending.values()].map((p) => p.label).join(', ')}`);
    // Members that formed the last generation there stop too: their sessions end.
    this.nowMs += FAR_MS;
    this.group.tick(this.nowMs);
    await flush();
    this.expect(this.group.state === 'Empty', `a group nobody talks to ends Empty, not ${this.group.state}`);
    this.expect(this.group.nextDeadlineMs() === null, 'nothing left to time');
    this.throwFailures();
  }

  private client(c: number): Client {
    const client = this.clients[c % this.clients.length];
    assert(client !== undefined);
    return client;
  }

  private expect(ok: boolean, what: string): void {
    if (!ok) this.failures.push(what);
  }

  private throwFailures(): void {
    if (this.failures.length > 0) throw new Error(this.failures.join('\n'));
  }

  private expectError(error: unknown, codes: ReadonlySet<ErrorCode>, what: string): error is DriftwoodError {
    const ok = error instanceof DriftwoodError && codes.has(error.code);
    this.expect(ok, `${what} failed with ${error instanceof DriftwoodError ? error.code : String(error)}`);
    if (ok) count(`${what.split(' ')[0] ?? ''} ${error.code}`);
    return ok;
  }

  private track<T>(client: Client, label: string, promise: Promise<T>, onValue: (value: T) => void, onError: (error: unknown) => void): void {
    const key = this.pendingCounter++;
    this.pending.set(key, { label, group: this.group });
    client.waiting += 1;
    const settled = (): void => {
      this.pending.delete(key);
      client.waiting -= 1;
    };
    promise.then(
      (value) => { settled(); onValue(value); },
      (error: unknown) => { settled(); onError(error); },
    ).catch((error: unknown) => { this.failures.push(`a check threw: ${String(error)}`); });
  }

  /** The member was heard from now: its session runs at least its timeout from here. */
  private alive(memberId: string): void {
    const member = this.group.persisted().members.find((m) => m.memberId === memberId);
    if (member !== undefined) this.aliveUntilMs.set(memberId, Math.max(this.aliveUntilMs.get(memberId) ?? 0, this.nowMs + member.sessionTimeoutMs));
  }

  private gen(client: Client, choice: GenChoice): number {
    if (choice === 'group') return this.group.generationId;
    return choice === 'stale' ? client.generation - 1 : client.generation;
  }

  private next(op: Extract<Op, { kind: 'next' }>): void {
    const client = this.client(op.c);
    if (client.waiting > 0) {
      count('next: wait');
      return;
    }
    count(`next: ${client.memberId === '' ? (client.pendingId === '' ? 'joinNew' : 'joinPending') : client.next}`);
    if (client.memberId === '') {
      this.join({ ...op, kind: client.pendingId === '' ? 'joinNew' : 'joinPending' });
    } else if (client.next === 'join') {
      this.join({ ...op, kind: 'rejoin' });
    } else if (client.next === 'sync') {
      this.sync({ kind: 'sync', c: op.c, gen: 'known', assign: 'all', ghost: false, nonce: op.nonce });
    } else {
      this.heartbeat({ kind: 'heartbeat', c: op.c, gen: 'known' });
    }
  }

  /** A client told its id is unknown starts over; told to rebalance, it joins again. */
  private told(client: Client, memberId: string, error: DriftwoodError): void {
    if (client.memberId !== memberId) return;
    if (error.code === 'UNKNOWN_MEMBER_ID') {
      client.memberId = '';
      client.pendingId = '';
    }
    if (error.code === 'REBALANCE_IN_PROGRESS' || error.code === 'ILLEGAL_GENERATION' || error.code === 'NOT_COORDINATOR') client.next = 'join';
  }

  private join(op: Extract<Op, { kind: 'joinNew' | 'joinPending' | 'rejoin' }>): void {
    const client = this.client(op.c);
    const protocols = op.protocols === SAME_PROTOCOLS ? client.protocols : (protocolMenu[op.protocols] ?? []).map((name) => (name === 'solo' ? `solo-${op.c}` : name));
    const memberId = op.kind === 'joinNew' ? '' : op.kind === 'joinPending' ? (client.pendingId || `never-issued-${op.c}`) : (client.memberId || `never-joined-${op.c}`);
    const request: ClassicJoinRequest = {
      memberId,
      clientId: `c${op.c}`,
      clientHost: `/127.0.0.${op.c + 1}`,
      protocolType: op.connect ? 'connect' : 'consumer',
      // Metadata names its owner, so a list mixed up between members shows.
      protocols: protocols.map((name) => ({ name, metadata: Buffer.from(`${name}/c${op.c}/v${op.metadataVersion}`) })),
      sessionTimeoutMs: sessionMenuMs[op.session] ?? 10_000,
      rebalanceTimeoutMs: rebalanceMenuMs[op.rebalance] ?? 5000,
      requireKnownMemberId: op.kind === 'joinNew' ? op.v4 : true,
    };
    count(op.kind);
    this.aliveUntilMs.delete(memberId); // a join may shorten its session
    this.track(client, `join of c${op.c} (${memberId || 'new'})`, this.group.join(request, this.nowMs), (answer) => {
      this.joined(client, request, answer);
    }, (error) => {
      if (!this.expectError(error, joinCodes, `join of c${op.c}`)) return;
      this.told(client, memberId, error);
      if (error.code === 'MEMBER_ID_REQUIRED') {
        this.expect(memberId === '' && request.requireKnownMemberId, 'MEMBER_ID_REQUIRED only for a v4 join without an id');
        const given = error.hints.memberId;
        this.expect(typeof given === 'string' && given.length > 0 && !this.issuedIds.has(given), `MEMBER_ID_REQUIRED gives a new id, not ${String(given)}`);
        if (typeof given === 'string') {
          this.issuedIds.add(given);
          client.pendingId = given;
        }
      }
      if (error.code !== 'MEMBER_ID_REQUIRED' && error.code !== 'NOT_COORDINATOR') this.expect(memberId !== '' || error.code !== 'UNKNOWN_MEMBER_ID', 'a join without an id is never UNKNOWN_MEMBER_ID');
    });
    client.protocols = protocols;
    client.metadataVersion = op.metadataVersion;
  }

  private joined(client: Client, request: ClassicJoinRequest, answer: ClassicJoinAnswer): void {
    count('join answered');
    if (request.memberId === '') {
      this.expect(!this.issuedIds.has(answer.memberId), `a one-step join gets a new id, not ${answer.memberId}`);
      this.issuedIds.add(answer.memberId);
    } else {
      this.expect(answer.memberId === request.memberId, `join of ${request.memberId} answered for ${answer.memberId}`);
    }
    this.expect(answer.protocolType === request.protocolType, `a ${request.protocolType} member was answered protocol type ${answer.protocolType}`);
    this.expect(request.protocols.some((p) => p.name === answer.protocolName), `${answer.memberId} got protocol ${answer.protocolName}, which it does not support`);
    this.expect(answer.generationId <= this.group.generationId, `answered generation ${answer.generationId} after the group's ${this.group.generationId}`);
    const generation = this.generations.get(answer.generationId);
    if (generation === undefined) {
      this.failures.push(`${answer.memberId} was answered generation ${answer.generationId}, which never formed`);
      return;
    }
    this.expect(answer.leader === generation.leader && answer.protocolName === generation.protocolName && answer.protocolType === generation.protocolType,
      `answers of generation ${answer.generationId} disagree: ${JSON.stringify([answer.leader, answer.protocolName])} vs ${JSON.stringify([generation.leader, generation.protocolName])}`);
    this.expect(generation.members.some((m) => m.memberId === answer.memberId), `${answer.memberId} answered in generation ${answer.generationId} without being one of its members`);
    if (answer.memberId === answer.leader) {
      count('leader answered');
      assert.deepStrictEqual(answer.members, generation.members, `the leader of generation ${answer.generationId} lists exactly its members with their metadata`);
    } else {
      this.expect(answer.members.length === 0, 'followers are not told the members');
    }
    generation.answered.add(answer.memberId);
    this.alive(answer.memberId);
    client.memberId = answer.memberId;
    client.generation = answer.generationId;
    client.leads = answer.memberId === answer.leader ? answer.members.map((m) => m.memberId) : null;
    client.next = 'sync';
  }

  private sync(op: Extract<Op, { kind: 'sync' }>): void {
    const client = this.client(op.c);
    const generationId = this.gen(client, op.gen);
    const named = client.leads ?? this.group.describe().members.map((m) => m.memberId); // a follower's assignments must be ignored
    const chosen = op.assign === 'none' ? [] : named.filter((_, i) => op.assign === 'all' || i % 2 === 0);
    const assignments = chosen.map((memberId) => ({ memberId, assignment: Buffer.from(`${memberId}@${generationId}#${op.nonce}`) }));
    if (op.ghost) assignments.push({ memberId: 'ghost', assignment: Buffer.from('nobody') });
    const memberId = client.memberId;
    const before = { state: this.group.state, generation: this.group.generationId };
    count('sync');
    this.track(client, `sync of c${op.c} (${memberId || 'none'}) in ${generationId}`, this.group.sync(memberId, generationId, assignments, this.nowMs), (assignment) => {
      count('sync answered');
      const generation = this.generations.get(generationId);
      const assigned = generation?.assigned;
      if (assigned === undefined || assigned === null) {
        this.failures.push(`${memberId} was answered a sync in generation ${generationId}, whose leader assigned nothing`);
        return;
      }
      this.expect(assignment.equals(assigned.get(memberId) ?? EMPTY), `${memberId} got ${assignment.toString()} in generation ${generationId}, not what its leader assigned`);
      if (client.memberId === memberId && client.generation === generationId) client.next = 'heartbeat';
    }, (error) => {
      if (this.expectError(error, syncCodes, `sync of c${op.c}`)) this.told(client, memberId, error);
    });
    if (before.state === 'CompletingRebalance' && this.group.state === 'Stable') {
      const generation = this.generations.get(before.generation);
      this.expect(generation !== undefined && generation.leader === memberId && generationId === before.generation, `the group went Stable on a sync by ${memberId}, not its leader, in ${generationId}`);
      if (generation !== undefined) generation.assigned = new Map(assignments.map((a) => [a.memberId, a.assignment]));
      count('leader assigned');
    }
  }

  private heartbeat(op: Extract<Op, { kind: 'heartbeat' }>): void {
    const client = this.client(op.c);
    try {
      this.group.heartbeat(client.memberId, this.gen(client, op.gen), this.nowMs);
      count('heartbeat ok');
      this.alive(client.memberId);
    } catch (error) {
      if (this.expectError(error, heartbeatCodes, `heartbeat of c${op.c}`)) this.told(client, client.memberId, error);
    }
  }

  private leave(cs: readonly number[]): void {
    const ids = cs.map((c) => this.client(c).memberId);
    const members = new Set(this.group.describe().members.map((m) => m.memberId));
    const answers = this.group.leave(ids, this.nowMs);
    this.expect(answers.length === ids.length, 'one answer per member leaving');
    answers.forEach((answer, i) => {
      const id = ids[i] ?? '';
      if (answer === null) {
        count('left');
        this.expect(members.has(id), `${id} left without being a member`);
        members.delete(id);
      } else {
        this.expectError(answer, leaveCodes, `leave of ${id}`);
        this.expect(!members.has(id), `${id} could not leave though a member`);
      }
    });
  }

  private commit(op: Extract<Op, { kind: 'commit' }>): void {
    const client = this.client(op.c);
    const [memberId, generationId] = op.outsider ? ['', -1] : [client.memberId, this.gen(client, op.gen)];
    const { state, members } = this.group.describe();
    try {
      this.group.checkCommit(memberId, generationId);
      count('commit ok');
      if (memberId === '' && generationId < 0) {
        this.expect(members.length === 0, 'an outsider commits only to a group without members');
      } else {
        this.expect(members.some((m) => m.memberId === memberId) && generationId === this.group.generationId && state !== 'CompletingRebalance', `${memberId} committed in generation ${generationId} (group at ${this.group.generationId}, ${state})`);
      }
    } catch (error) {
      this.expectError(error, commitCodes, `commit of c${op.c}`);
    }
  }

  /** Outside a rebalance's deadline, only sessions that ran out end. */
  private tick(ms: number): void {
    const state = this.group.state;
    const members = this.group.describe().members.map((m) => m.memberId);
    this.nowMs += ms;
    this.group.tick(this.nowMs);
    if (state === 'PreparingRebalance') return;
    const still = new Set(this.group.describe().members.map((m) => m.memberId));
    for (const memberId of members) {
      const untilMs = this.aliveUntilMs.get(memberId) ?? 0;
      this.expect(still.has(memberId) || untilMs <= this.nowMs, `${memberId} expired at ${this.nowMs} in ${state}, though its session runs until ${untilMs}`);
    }
  }

  private async failover(ms: number): Promise<void> {
    const old = this.group;
    const persisted = JSON.parse(JSON.stringify(old.persisted())) as PersistedClassicGroup;
    assert.deepStrictEqual(persisted, old.persisted(), 'the persisted form survives JSON');
    old.abandon(new DriftwoodError('NOT_COORDINATOR', 'the coordinator moved'));
    this.nowMs += ms;
    const taken = new ClassicGroup('g', this.limits, this.newMemberId);
    taken.restore(persisted, this.nowMs);
    this.group = taken;
    for (const m of persisted.members) this.alive(m.memberId);
    count(`failover from ${persisted.state}`);
    if (persisted.state === 'Stable') {
      assert.deepStrictEqual(taken.describe(), old.describe(), 'a stable group is described alike after a failover');
      assert.deepStrictEqual(taken.persisted(), old.persisted(), 'and persisted alike');
    }
    this.expect(taken.size === old.size, 'a failover keeps every member');
    await flush();
    const left = [...this.pending.values()].filter((p) => p.group === old);
    this.expect(left.length === 0, `the old coordinator left requests waiting: ${left.map((p) => p.label).join(', ')}`);
  }

  private check(before: { state: ClassicGroupState; generation: number }, op: Op): void {
    const group = this.group;
    const persisted = group.persisted();
    const generationId = group.generationId;
    this.expect(generationId >= this.highestGeneration, `generation went down from ${this.highestGeneration} to ${generationId} on ${op.kind}`);
    this.highestGeneration = Math.max(this.highestGeneration, generationId);
    this.expect(generationId <= before.generation + 1, `two generations in one ${op.kind}`);
    this.expect((group.state === 'Empty') === (persisted.members.length === 0), `${group.state} with ${persisted.members.length} members`);
    if (group.state === 'Empty') {
      this.expect(persisted.leader === null && persisted.protocol === null, 'an empty group has no leader or protocol');
    }
    if (this.justFormed !== null) {
      const formed = this.generations.get(this.justFormed);
      const missing = formed?.members.filter((m) => !formed.answered.has(m.memberId)).map((m) => m.memberId) ?? [];
      this.expect(missing.length === 0, `generation ${this.justFormed} formed without answering ${missing.join(', ')}`);
    }
    if (group.state === 'CompletingRebalance' || group.state === 'Stable') this.checkGeneration(persisted);
    if (this.pending.size > 0 || group.state === 'PreparingRebalance') {
      this.expect(group.nextDeadlineMs() !== null, `${group.state} with requests waiting but nothing to tick for`);
    }
    this.throwFailures();
  }

  /** Before the answers of a generation formed in this step are looked at: what formed. */
  private noteFormed(before: { generation: number }): void {
    this.justFormed = null;
    if (this.group.state === 'CompletingRebalance' && this.group.generationId !== before.generation) {
      this.formed(this.group.persisted());
      this.justFormed = this.group.generationId;
    }
  }

  /** A new generation: its members, leader and protocol, checked against the rules. */
  private formed(persisted: PersistedClassicGroup): void {
    count('generation formed');
    const leader = persisted.leader ?? '';
    const protocolName = persisted.protocol ?? '';
    const previous = this.generations.get(persisted.generationId - 1);
    if (previous !== undefined && persisted.members.some((m) => m.memberId === previous.leader)) {
      this.expect(leader === previous.leader, `the leader ${previous.leader} is still a member but ${leader} leads generation ${persisted.generationId}`);
    }
    // Each member votes for its most preferred protocol that every member supports; most
    // votes wins, a tie goes to the first member's order.
    const supportedByAll = (name: string): boolean => persisted.members.every((m) => m.protocols.some((p) => p.name === name));
    const candidates = (persisted.members[0]?.protocols ?? []).map((p) => p.name).filter(supportedByAll);
    const votes = (name: string): number => persisted.members.filter((m) => m.protocols.find((p) => supportedByAll(p.name))?.name === name).length;
    const best = candidates.reduce((a, b) => (votes(b) > votes(a) ? b : a), candidates[0] ?? '');
    this.expect(protocolName === best, `generation ${persisted.generationId} chose ${protocolName}, not ${best} (most votes among those every member supports)`);
    this.generations.set(persisted.generationId, {
      leader,
      protocolName,
      protocolType: persisted.protocolType ?? '',
      members: persisted.members.map((m) => ({ memberId: m.memberId, metadata: Buffer.from(m.protocols.find((p) => p.name === protocolName)?.metadata ?? '', 'base64') })),
      answered: new Set(),
      assigned: null,
    });
  }

  /** CompletingRebalance and Stable: the members, leader, protocol and assignments of the current generation. */
  private checkGeneration(persisted: PersistedClassicGroup): void {
    const generation = this.generations.get(persisted.generationId);
    if (generation === undefined) {
      this.failures.push(`${persisted.state} in generation ${persisted.generationId}, which never formed`);
      return;
    }
    this.expect(persisted.leader !== null && persisted.members.some((m) => m.memberId === persisted.leader), `${persisted.state} with leader ${String(persisted.leader)}, not a member`);
    this.expect(persisted.leader === generation.leader && persisted.protocol === generation.protocolName, 'the leader and protocol hold through the generation');
    this.expect(persisted.members.every((m) => m.protocols.some((p) => p.name === persisted.protocol)), `protocol ${String(persisted.protocol)} is not supported by every member`);
    const described = this.group.describe();
    assert.deepStrictEqual(described.members.map((m) => ({ memberId: m.memberId, metadata: m.metadata })), generation.members, `generation ${persisted.generationId}'s members and metadata hold while it lasts`);
    for (const member of described.members) {
      const expected = persisted.state === 'Stable' ? generation.assigned?.get(member.memberId) ?? EMPTY : EMPTY;
      this.expect(persisted.state !== 'Stable' || generation.assigned !== null, `Stable in generation ${persisted.generationId} before its leader assigned`);
      this.expect(member.assignment.equals(expected), `${member.memberId} holds ${member.assignment.toString()}, not what the leader of ${persisted.generationId} assigned it`);
    }
  }
}

async function run(scenario: Scenario): Promise<void> {
  const harness = new Harness(scenario.clients, scenario.limits);
  for (const op of scenario.ops) await harness.step(op);
  await harness.finish();
}

const defaults = { metadataVersion: 0, session: 2, rebalance: 1, connect: false } as const;
/**
 * What the property found, kept as the shrunk scenarios: the generators changed after these
 * were found, so their seed and path no longer replay them. Each fails without its fix.
 */
const regressions: ReadonlyArray<{ readonly found: string; readonly scenario: Scenario }> = [
  {
    // seed -348676838, path 9:1:1:1:2:5:3:7:7:7:10:11:11:11:11:15:16:16:16:16:16:27:27:32:32:32:32:32:32:35:0:9:14:15:20:21:20:20:20:20:20:24:24:24:24:24:24:14:14
    found: 'a follower that syncs twice while waiting for its leader: the first sync was never answered',
    scenario: {
      clients: 2,
      limits: { ...defaultClassicGroupLimits, initialRebalanceDelayMs: 0 },
      ops: [
        { kind: 'joinNew', v4: false, c: 0, protocols: SAME_PROTOCOLS, ...defaults },
        { kind: 'joinNew', v4: false, c: 1, protocols: SAME_PROTOCOLS, ...defaults },
        { kind: 'rejoin', c: 0, protocols: SAME_PROTOCOLS, ...defaults },
        { kind: 'sync', c: 1, gen: 'known', assign: 'none', ghost: false, nonce: 0 },
        { kind: 'sync', c: 1, gen: 'known', assign: 'none', ghost: false, nonce: 0 },
      ],
    },
  },
  {
    // seed 287711296, path 4:3:2:4:4:4:4:10:10:10:11:15:16:16:16:21:10:21:26:28:28:28:31:3:1:14:19:19:3:3:5:6:6:8:8:8:8:8:8:6:6:6:6:6:6:6
    found: "a group's only member joining again under another protocol type: accepted, and answered the group's old type",
    scenario: {
      clients: 2,
      limits: { ...defaultClassicGroupLimits, initialRebalanceDelayMs: 0 },
      ops: [
        { kind: 'joinNew', v4: true, c: 0, protocols: SAME_PROTOCOLS, ...defaults },
        { kind: 'joinPending', c: 0, protocols: 0, ...defaults, connect: true },
        { kind: 'rejoin', c: 0, protocols: SAME_PROTOCOLS, ...defaults },
      ],
    },
  },
];

for (const { found, scenario } of regressions) {
  void t.test(`regression: ${found}`, { timeout: 10_000 }, async (t) => {
    await run(scenario);
    t.pass('every check held');
  });
}

void t.test(`classic group under random clients, time and failovers (${RUNS} runs)`, { timeout: 120_000 }, async (t) => {
  const replay = process.env.CLASSIC_SEED === undefined ? {} : { seed: Number(process.env.CLASSIC_SEED), path: process.env.CLASSIC_PATH ?? '' };
  await fc.assert(fc.asyncProperty(scenarioArbitrary, run), { numRuns: RUNS, ...replay });
  t.comment(`seen: ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
  // The counts only mean something over many fresh runs, not when replaying one.
  if (process.env.CLASSIC_SEED !== undefined || RUNS < 100) return;
  for (const name of ['generation formed', 'leader assigned', 'sync answered', 'failover from Stable', 'failover from PreparingRebalance', 'join MEMBER_ID_REQUIRED', 'commit ok', 'left']) {
    t.ok((seen.get(name) ?? 0) >= RUNS / 10, `${name} was exercised (${seen.get(name) ?? 0} times)`);
  }
});
