// The Transport port for Raft: best-effort delivery of messages to peers by node id. Raft
// tolerates loss, duplication and reordering, so neither side retries; the real transport
// (http-transport.ts) batches per peer over HTTP/2, the simulator's (sim/network.ts) delays,
// drops, duplicates and partitions.
import type { Message } from '../../raft/index.js';

export interface RaftTransport {
  /** Hands messages over for delivery to their `to` nodes; returns at once. */
  send(messages: readonly Message[]): void;
}
