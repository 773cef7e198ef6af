// Every limit the Kafka-protocol listener puts on a client (README: Limits), as
// src/http/limits.ts does for HTTP. Refusals follow Kafka's broker: a frame it will not read
// closes the connection (the protocol has no way to answer a request it did not parse).

export interface KafkaListenerLimits {
  /** One request frame (Kafka's socket.request.max.bytes, 100 MiB there); a bigger size prefix closes the connection. */
  readonly requestBytesMax: number;
  /** Open Kafka connections per node; further ones are closed at once. */
  readonly connectionsMax: number;
  /** Requests read but not yet answered on one connection; at the limit the socket is not read until answers go out. */
  readonly inFlightRequestsPerConnectionMax: number;
  /** A connection with nothing received, nothing in flight and nothing to write for this long is closed (Kafka's connections.max.idle.ms). */
  readonly idleTimeoutMs: number;
  /** Once a frame's first byte arrives, the whole frame must arrive within this (a slow client is closed). */
  readonly frameReceiveTimeoutMs: number;
  /** Answer bytes waiting in one socket's write buffer past which the socket is not read until they drain (a client that does not read its answers). */
  readonly pendingWriteBytesMax: number;
}

export const defaultKafkaListenerLimits: KafkaListenerLimits = {
  requestBytesMax: 8 * 1024 * 1024,
  connectionsMax: 1024,
  inFlightRequestsPerConnectionMax: 64,
  idleTimeoutMs: 600_000,
  frameReceiveTimeoutMs: 30_000,
  pendingWriteBytesMax: 16 * 1024 * 1024,
};

/** api_key values Kafka has defined stay below this; the request counter labels others 'unknown' (bounded series). */
export const API_KEY_LABELLED_MAX = 128;
