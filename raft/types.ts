// The data the Raft core exchanges with its driver and its peers. Everything here is plain
// data: the core holds no I/O, so these values are all that crosses its edge.

/** A member of the quorum, as numbered in the shared peers list. 0 is never a node id. */
export type NodeId = number;

/**
 * A node id, or 0 for none (no vote cast, no leader known). The `| 0` is there for the reader;
 * to the compiler it is just a number.
 */
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents
export type NodeIdOrNone = NodeId | 0;

/**
 * One log entry. `noop` is the empty entry a new leader appends so that it can commit an
 * entry of its own term (Raft §5.4.2 / thesis §6.4); the state machine skips it.
 */
export interface Entry {
  index: number;
  term: number;
  type: 'normal' | 'noop';
  data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent. 0 = no vote. */
export interface HardState {
  term: number;
  vote: NodeIdOrNone;
  commit: number;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  voters: NodeId[];
  observers: NodeId[];
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type Message = { from: NodeId; to: NodeId; term: number } & (
  /** term = the term the pre-candidate WOULD use; the sender's own term is unchanged. */
  | { type: 'preVote'; lastIndex: number; lastTerm: number }
  | { type: 'preVoteResponse'; granted: boolean }
  /** transfer=true: a leadership transfer, which bypasses leader stickiness. */
  | { type: 'vote'; lastIndex: number; lastTerm: number; transfer: boolean }
  | { type: 'voteResponse'; granted: boolean }
  | { type: 'append'; prevIndex: number; prevTerm: number; entries: Entry[]; commit: number }
  /**
   * index: the match index on success, or the rejected prevIndex. On rejection hintIndex and
   * hintTerm are the follower's guess of the last place the logs may match (the largest
   * index <= prevIndex whose term is <= prevTerm, and that term; etcd's RejectHint/LogTerm).
   */
  | { type: 'appendResponse'; success: boolean; index: number; hintIndex: number; hintTerm: number }
  /** context: a read-index request id, or 0 for a plain heartbeat. */
  | { type: 'heartbeat'; commit: number; context: number }
  | { type: 'heartbeatResponse'; context: number }
  /** One chunk of a snapshot; chunks are sent in order, one at a time. */
  | { type: 'snapshot'; meta: SnapshotMeta; offset: number; chunk: Uint8Array; done: boolean }
  /** offset: how many bytes of the snapshot the follower holds (the next offset it expects). */
  | { type: 'snapshotResponse'; offset: number; done: boolean; rejected: boolean }
  /** Leadership transfer: "campaign now", skipping pre-vote. */
  | { type: 'timeoutNow' }
);

export type MessageType = Message['type'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message as the core writes it before addressing it: from, to and term are filled in. */
export type MessageBody = DistributiveOmit<Message, 'from' | 'to' | 'term'>;

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader' | 'observer';

export interface ReadState {
  requestId: number;
  index: number;
}

export interface SoftState {
  leader: NodeIdOrNone;
  role: Role;
}

/**
 * What the driver must do, in this order:
 *  1. persist `snapshot` (if any: it replaces the whole stored log and the state machine),
 *     then `entries` (truncating the stored log from entries[0].index first), then
 *     `hardState` — synchronously, and ideally in one atomic write;
 *  2. send `messages`;
 *  3. apply `committed` in order (all of them are durable locally by now);
 *  4. call advance().
 * Nothing in `messages` may leave before step 1 is durable: a vote or an append acknowledged
 * before it is durable is the classic double-vote / lost-commit bug.
 */
export interface Ready {
  /** To persist BEFORE sending messages; null if unchanged. */
  hardState: HardState | null;
  /** To append to stable storage BEFORE sending messages; may overwrite a suffix. */
  entries: Entry[];
  /** A received snapshot to persist and install (replace the state machine) before applying. */
  snapshot: Snapshot | null;
  /** Committed entries to apply, in order; only entries already durable locally. */
  committed: Entry[];
  /** To send AFTER the above is persisted. */
  messages: Message[];
  /** Linearizable reads that may be served once the applied index >= index. */
  readStates: ReadState[];
  /** The leader or role changed, for the driver to report. */
  softState: SoftState | null;
}

/** The randomness port: election timeout jitter. A uniformly random integer in [0, max). */
export interface RaftRng {
  int(maxExclusive: number): number;
}

/**
 * Deliberate bugs, switched on only by the simulator and tests to prove their checkers catch
 * them:
 *  - raft-vote-twice: grant a second, different vote in the same term;
 *  - raft-commit-old-term: let the leader commit a previous-term entry by counting replicas;
 *  - raft-ack-before-persist: hand out vote/append responses one Ready before the hard state
 *    and entries they depend on.
 */
export type RaftBug = 'raft-vote-twice' | 'raft-commit-old-term' | 'raft-ack-before-persist';
