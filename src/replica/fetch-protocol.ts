// Replica fetch between brokers, as data: one long-polling fetch per (follower, leader)
// covering every partition the follower replicates from that leader, in incremental
// sessions (Kafka's KIP-227): the first request of a session lists every partition; later
// ones list only partitions whose fetch position changed (or that joined) and those that
// left, and the answer holds only partitions with something to say (records, a new high
// watermark or log start, a divergence, an error). Idle partitions cost nothing on the wire.
import type { ErrorCode } from '../../storage/errors.js';

export interface FetchPosition {
  readonly topicId: string;
  readonly partition: number;
  /** The leader epoch the follower believes current (the leader refuses others). */
  readonly leaderEpoch: number;
  readonly fetchOffset: number;
  /** Epoch of the follower's last batch, -1 for an empty log (KIP-320's divergence check). */
  readonly lastFetchedEpoch: number;
}

export interface PartitionKey {
  readonly topicId: string;
  readonly partition: number;
}

export interface ReplicaFetchRequest {
  readonly followerId: number;
  /** 0 opens a new session (and `positions` must then list every partition). */
  readonly sessionId: number;
  /** The request's number within its session: 0 for a new one, then 1, 2, ... */
  readonly sessionEpoch: number;
  readonly positions: readonly FetchPosition[];
  readonly removed: readonly PartitionKey[];
  /** The leader answers once it has anything to say, or after this long with nothing. */
  readonly maxWaitMs: number;
  /** Bytes of records one answer carries at most (at least one batch when there is one). */
  readonly bytesMax: number;
  readonly partitionBytesMax: number;
}

export type PartitionAnswer = PartitionKey & {
  readonly highWatermark: number;
  readonly logStartOffset: number;
} & (
  | { readonly kind: 'records'; readonly bytes: Buffer }
  | { readonly kind: 'diverging'; readonly epoch: number; readonly endOffset: number }
  | { readonly kind: 'start-over' }
  | { readonly kind: 'error'; readonly error: ErrorCode; readonly message: string }
);

export interface ReplicaFetchResponse {
  readonly sessionId: number;
  /** Set when the session is unknown or out of step: the follower starts a new one. */
  readonly sessionError?: 'FETCH_SESSION_ID_NOT_FOUND' | 'INVALID_FETCH_SESSION_EPOCH';
  readonly partitions: readonly PartitionAnswer[];
}

/** The port a follower fetches through: HTTP/2 between processes, the simulated network in sim/. */
export interface ReplicaChannel {
  fetch(leaderId: number, request: ReplicaFetchRequest): Promise<ReplicaFetchResponse>;
}

export function partitionKey(key: PartitionKey): string {
  return `${key.topicId}/${key.partition}`;
}
