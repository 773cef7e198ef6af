// A tiny in-test network of Raft nodes (etcd's "network" test helper). Each node has a
// driver that persists a Ready into an in-memory store (what would be on disk: the state a
// restart starts from), sends its messages into a shared queue, applies committed entries to
// a toy state machine (the list of applied entries) and calls advance(). Delivery is
// synchronous and explicit, so a test decides exactly what arrives, in which order, and what
// is lost.
//
// The driver also checks the persistence contract on every Ready it persists: a granted vote
// or a successful append acknowledgement may only leave once the vote or the entries are in
// the store (raft-ack-before-persist trips this).
import assert from 'node:assert/strict';
import { Raft, type RaftConfig, type RaftState } from '../../raft/raft.js';
import type { Entry, HardState, Message, NodeId, RaftBug, RaftRng, ReadState, Ready, SnapshotMeta } from '../../raft/types.js';

/** A broken invariant found by a checker (as opposed to a crash inside the core). */
export class Violation extends Error {
  override name = 'Violation';
}

export function violation(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Violation(message);
}

/** mulberry32: a small seeded PRNG for election jitter and test randomness. */
export class TestRng implements RaftRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
}

/** Always the smallest jitter: election timeouts of exactly electionTicks, for scripted tests. */
export const zeroRng: RaftRng = { int: () => 0 };

export function makeConfig(id: NodeId, voters: NodeId[], overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    voters,
    observers: [],
    electionTicks: 10,
    heartbeatTicks: 1,
    maxEntriesPerAppend: 64,
    maxBytesPerAppend: 1 << 20,
    maxInflightAppends: 16,
    snapshotChunkBytes: 1024,
    preVote: true,
    checkQuorum: true,
    ...overrides,
  };
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** Builds log entries from terms: entries(1, [1, 1, 2]) -> indexes 1..3 with those terms. */
export function entries(first: number, terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: first + i, term, type: 'normal' as const, data: bytes(`e${first + i}t${term}`) }));
}

/** What the driver persisted: exactly what a restart gets back. */
export interface Store {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  snapshotData: Uint8Array | undefined;
  entries: Entry[];
}

export function emptyStore(): Store {
  return { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, snapshotData: undefined, entries: [] };
}

/** The toy state machine: the applied entries (index, term, text), restorable from a snapshot. */
export interface Applied {
  index: number;
  term: number;
  data: string;
}

export function encodeState(applied: readonly Applied[]): Uint8Array {
  return bytes(JSON.stringify(applied));
}

export function decodeState(data: Uint8Array): Applied[] {
  return JSON.parse(text(data)) as Applied[];
}

export interface NodeOptions {
  config?: Partial<RaftConfig>;
  store?: Store;
  rng?: RaftRng;
}

export class TestNode {
  raft: Raft;
  store: Store;
  /** The state machine: every applied normal or noop entry, in order (snapshot included). */
  applied: Applied[] = [];
  appliedIndex = 0;
  readStates: ReadState[] = [];
  /** A Ready taken but not yet persisted (asynchronous driver); lost on restart. */
  pending: Ready | null = null;
  /** Every Ready persisted, for tests that look at the order of things. */
  readonly history: Ready[] = [];
  /** Check the persistence contract on every Ready (off to see a bug's consequences instead). */
  checkContract = true;

  constructor(
    readonly config: RaftConfig,
    store: Store,
    readonly rng: RaftRng,
  ) {
    this.store = store;
    this.raft = this.boot();
  }

  get id(): NodeId {
    return this.config.id;
  }

  /** A crash and restart: whatever was not persisted is gone. */
  restart(): void {
    this.pending = null;
    this.raft = this.boot();
  }

  private boot(): Raft {
    const s = this.store;
    const state: RaftState = { hardState: { ...s.hardState }, snapshot: s.snapshot, entries: [...s.entries] };
    if (s.snapshotData !== undefined) state.snapshotData = s.snapshotData;
    this.applied = s.snapshotData === undefined ? [] : decodeState(s.snapshotData);
    this.appliedIndex = s.snapshot?.index ?? 0;
    return new Raft(this.config, state, this.rng);
  }

  /** Takes a Ready, if any, without persisting it yet. */
  begin(): boolean {
    if (this.pending !== null || !this.raft.hasReady()) return false;
    this.pending = this.raft.ready();
    return true;
  }

  /** Persists the pending Ready, checks the contract, applies, advances; returns its messages. */
  complete(): Message[] {
    const rd = this.pending;
    if (rd === null) return [];
    this.pending = null;
    this.persist(rd);
    if (this.checkContract) checkAcknowledgements(this.store, rd.messages);
    this.apply(rd);
    for (const rs of rd.readStates) this.readStates.push(rs);
    this.history.push(rd);
    this.raft.advance();
    return rd.messages;
  }

  private persist(rd: Ready): void {
    const s = this.store;
    if (rd.snapshot !== null) {
      s.snapshot = rd.snapshot.meta;
      s.snapshotData = rd.snapshot.data;
      s.entries = [];
    }
    const first = rd.entries[0];
    if (first !== undefined) {
      const base = s.snapshot?.index ?? 0;
      assert(first.index > base, `driver: entries at ${first.index} at or below the snapshot ${base}`);
      assert(first.index <= base + s.entries.length + 1, `driver: entries at ${first.index} leave a gap`);
      s.entries = s.entries.slice(0, first.index - base - 1).concat(rd.entries);
    }
    if (rd.hardState !== null) s.hardState = { ...rd.hardState };
  }

  private apply(rd: Ready): void {
    if (rd.snapshot !== null) {
      const meta = rd.snapshot.meta;
      assert(meta.index > this.appliedIndex, 'driver: snapshot not newer than the applied index');
      this.applied = decodeState(rd.snapshot.data);
      this.appliedIndex = meta.index;
    }
    for (const entry of rd.committed) {
      violation(entry.index === this.appliedIndex + 1, `node ${this.id} applies ${entry.index} after ${this.appliedIndex}`);
      this.applied.push({ index: entry.index, term: entry.term, data: text(entry.data) });
      this.appliedIndex = entry.index;
    }
  }

  /** The driver takes a snapshot of its applied state and lets the core compact the log. */
  compact(): boolean {
    const index = this.raft.appliedIndex;
    const base = this.store.snapshot?.index ?? 0;
    if (index <= base || this.pending !== null) return false;
    assert.equal(index, this.appliedIndex);
    const entry = this.store.entries[index - base - 1];
    assert(entry !== undefined, `driver: applied entry ${index} not in the store`);
    const data = encodeState(this.applied);
    this.raft.compact(index, data);
    this.store.snapshot = { index, term: entry.term, ...this.raft.members() };
    this.store.snapshotData = data;
    this.store.entries = this.store.entries.slice(index - base);
    return true;
  }

  /** The stored entry at index, or undefined (compacted or beyond the stored log). */
  storedEntry(index: number): Entry | undefined {
    const base = this.store.snapshot?.index ?? 0;
    return index <= base ? undefined : this.store.entries[index - base - 1];
  }

  storedLastIndex(): number {
    return (this.store.snapshot?.index ?? 0) + this.store.entries.length;
  }
}

/**
 * The persistence contract: an acknowledgement in a Ready must be backed by the store once
 * that Ready is persisted. A vote granted in term T needs a stored term > T, or term T with
 * that vote; an append acknowledged up to index i in term T needs a stored term > T or a
 * stored log reaching i.
 */
export function checkAcknowledgements(store: Store, messages: readonly Message[]): void {
  const hs = store.hardState;
  for (const m of messages) {
    if (m.type === 'voteResponse' && m.granted) {
      violation(hs.term > m.term || (hs.term === m.term && hs.vote === m.to), `node ${m.from} granted its vote to ${m.to} in term ${m.term} before persisting it (stored term ${hs.term}, vote ${hs.vote})`);
    }
    if (m.type === 'appendResponse' && m.success) {
      const last = (store.snapshot?.index ?? 0) + store.entries.length;
      violation(hs.term > m.term || (hs.term === m.term && last >= m.index), `node ${m.from} acknowledged index ${m.index} in term ${m.term} with only ${last} stored (term ${hs.term})`);
    }
  }
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, oldest first. */
  queue: Message[] = [];
  /** Cut links, as "from>to". */
  private readonly cut = new Set<string>();
  /** Nodes that are down: they neither process nor receive. */
  readonly down = new Set<NodeId>();
  /** Messages for which this returns false are lost (on top of cut links). */
  filter: ((m: Message) => boolean) | null = null;
  /** Called after every Ready a node persists, for checkers. */
  onReady: ((node: TestNode, rd: Ready) => void) | null = null;

  constructor(nodes: TestNode[]) {
    for (const node of nodes) this.nodes.set(node.id, node);
  }

  /** n voters (and observers) with fresh stores; the rng of each node derives from seed. */
  static create(voters: NodeId[], options: { observers?: NodeId[]; config?: Partial<RaftConfig>; seed?: number; bugs?: ReadonlySet<RaftBug> } = {}): Network {
    const observers = options.observers ?? [];
    const nodes = [...voters, ...observers].map((id) => {
      const config = makeConfig(id, voters, { observers, ...options.config });
      if (options.bugs !== undefined) config.bugs = options.bugs;
      const rng = options.seed === undefined ? zeroRng : new TestRng(options.seed * 31 + id);
      return new TestNode(config, emptyStore(), rng);
    });
    return new Network(nodes);
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  /** Takes, persists and completes one Ready of a node; returns whether there was one. */
  process(id: NodeId): boolean {
    if (this.down.has(id)) return false;
    const node = this.node(id);
    if (node.pending === null && !node.begin()) return false;
    const rd = node.pending;
    assert(rd !== null);
    this.queue.push(...node.complete());
    this.onReady?.(node, rd);
    return true;
  }

  /** Delivers one message (if its link is up and its target alive). */
  deliver(m: Message): void {
    if (this.down.has(m.to) || this.down.has(m.from) || this.cut.has(`${m.from}>${m.to}`)) return;
    if (this.filter !== null && !this.filter(m)) return;
    const node = this.nodes.get(m.to);
    node?.raft.step(m);
  }

  /** Delivers the message at position `at` of the queue. */
  deliverAt(at: number): void {
    const [m] = this.queue.splice(at, 1);
    if (m !== undefined) this.deliver(m);
  }

  /** Takes every queued message out of the network (to inspect, filter or reorder it). */
  drain(): Message[] {
    const out = this.queue;
    this.queue = [];
    return out;
  }

  /** Processes and delivers until nothing moves (bounded, to catch livelocks). */
  stabilize(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round++) {
      let moved = false;
      for (const id of this.nodes.keys()) moved = this.process(id) || moved;
      const batch = this.drain();
      for (const m of batch) this.deliver(m);
      if (!moved && batch.length === 0) return;
    }
    assert.fail('network did not stabilize');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) if (!this.down.has(id)) this.raft(id).tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.nodes.keys()) this.tick(id);
  }

  /** Makes `id` campaign now: enough ticks for its (zero-jitter) election timeout, then settle. */
  elect(id: NodeId): void {
    const raft = this.raft(id);
    const ticks = 2 * this.node(id).config.electionTicks;
    for (let i = 0; i < ticks && raft.role !== 'preCandidate' && raft.role !== 'candidate' && raft.role !== 'leader'; i++) raft.tick();
    this.stabilize();
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cutLink(id, other);
      this.cutLink(other, id);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  crash(id: NodeId): void {
    this.down.add(id);
  }

  /** Restarts a node from its store (a crash first if it was running). */
  restart(id: NodeId): void {
    this.down.delete(id);
    this.node(id).restart();
  }

  propose(id: NodeId, data: string): number | null {
    return this.raft(id).propose(bytes(data));
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => !this.down.has(n.id) && n.raft.role === 'leader').map((n) => n.id);
  }
}

/** A lone Raft for scripted unit tests (zero jitter unless an rng is given). */
export function lone(id: NodeId, voters: NodeId[], options: { config?: Partial<RaftConfig>; store?: Store; rng?: RaftRng } = {}): TestNode {
  return new TestNode(makeConfig(id, voters, options.config), options.store ?? emptyStore(), options.rng ?? zeroRng);
}

/** Takes and completes every Ready of a node; returns the messages it would send. */
export function flush(node: TestNode): Message[] {
  const out: Message[] = [];
  while (node.begin()) out.push(...node.complete());
  return out;
}

/** A store holding a log and a hard state, for nodes that start with history. */
export function storeWith(terms: number[], hardState: Partial<HardState> = {}): Store {
  const log = entries(1, terms);
  return { hardState: { term: terms.at(-1) ?? 0, vote: 0, commit: 0, ...hardState }, snapshot: null, snapshotData: undefined, entries: log };
}

type Kind<T extends Message['type']> = Extract<Message, { type: T }>;

/** The messages of one type, narrowed. */
export function ofType<T extends Message['type']>(messages: readonly Message[], type: T): Array<Kind<T>> {
  return messages.filter((m): m is Kind<T> => m.type === type);
}
