// The seam between the Kafka-protocol listener (node-kafka-server.ts: framing, limits,
// ordering) and the API handlers (built on the codec in ./protocol/). The listener reads no
// more of a request than its header's first three fields, which every header version shares.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';

/** Who sent a frame: for logs, quotas and per-connection state in the handlers. */
export interface ConnectionInfo {
  /** Unique per listener while the process runs. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export interface KafkaDispatcher {
  /**
   * Answers one request. `frame` is the request without its int32 size prefix (header and
   * body); the answer is the response without its size prefix (header and body), or null
   * when the request takes no response (Produce with acks=0). A rejection closes the
   * connection: use it only when no answer in the protocol fits.
   */
  handle(frame: Buffer, connection: ConnectionInfo): Promise<Buffer | null>;
}

/** The fields at the start of every request header version (v0, v1 and the flexible v2). */
export interface RequestHead {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
}

/** api_key (int16), api_version (int16), correlation_id (int32). */
export const REQUEST_HEAD_BYTES = 8;

export function readRequestHead(frame: Buffer): RequestHead {
  assert(frame.length >= REQUEST_HEAD_BYTES, 'a request frame holds at least its header start');
  return { apiKey: frame.readInt16BE(0), apiVersion: frame.readInt16BE(2), correlationId: frame.readInt32BE(4) };
}

/**
 * While the broker starts (the listener binds first, so its address works once registered),
 * a request closes its connection: the client reconnects and asks again.
 */
export const notStartedDispatcher: KafkaDispatcher = {
  handle(frame: Buffer): Promise<Buffer | null> {
    const { apiKey, apiVersion } = readRequestHead(frame);
    return Promise.reject(new DriftwoodError('NOT_CONTROLLER', `the broker is starting (api key ${apiKey} v${apiVersion}); the connection is closed`));
  },
};
