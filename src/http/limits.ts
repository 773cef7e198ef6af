// Every limit a node puts on what a caller may send, in one place (README: Limits). A hostile
// or broken client meets one of these before it can hold memory, a socket or a stream for
// long; each refusal is a 4xx with a stable code (src/http/node-error-handler.ts).
// Records per batch are a property of the batch format: RECORDS_PER_BATCH_MAX in
// storage/record-batch.ts.

/** Request bodies, per kind of route (fastify's per-route `bodyLimit`). */
export const bodyLimits = {
  /** JSON admin routes (topics, elections, producer ids) and anything without its own limit. */
  adminBodyBytesMax: 64 * 1024,
  /** Produce (binary batches or JSON records): room for a batch of the largest max.message.bytes a topic usually has, several per request. */
  produceBodyBytesMax: 8 * 1024 * 1024,
  /** Group heartbeats, commits and resets: a commit of many partitions' offsets. */
  groupBodyBytesMax: 4 * 1024 * 1024,
  /** Internal peer routes (Raft messages with entries and snapshot chunks, replica fetch sessions, controller requests). */
  internalBodyBytesMax: 8 * 1024 * 1024,
  /** The bare quorum's proposal route: a 64 KiB entry as a JSON string, escaped. */
  proposalBodyBytesMax: 512 * 1024,
} as const;

/** Consumer fetches: the most bytes one answer carries, and the longest long poll. */
export const fetchLimits = {
  fetchBytesMax: 64 * 1024 * 1024,
  fetchBytesDefault: 1024 * 1024,
  fetchWaitMsMax: 30_000,
  fetchWaitMsDefault: 500,
} as const;

/** Connections and streams (src/http/node-dual-server.ts). */
export interface ConnectionLimits {
  /** Open TCP connections per node; further ones are closed at once. */
  readonly connectionsMax: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: requests in flight on one connection. */
  readonly streamsPerConnectionMax: number;
  /** A connection that sends nothing for this long is closed (HTTP/1.1 and HTTP/2 alike). */
  readonly idleTimeoutMs: number;
  /** HTTP/1.1: the headers must arrive within this (slowloris). */
  readonly headersTimeoutMs: number;
  /** HTTP/1.1: the whole request (headers and body) must arrive within this (a slow body). */
  readonly requestTimeoutMs: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  connectionsMax: 1024,
  streamsPerConnectionMax: 256,
  idleTimeoutMs: 120_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
};
