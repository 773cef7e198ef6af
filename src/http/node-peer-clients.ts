// One HTTP/2 client per peer node (h2c, or TLS when the cluster uses it), shared by everything
// that calls other nodes: controller requests, partition offsets for topic descriptions, and
// replica fetches. Every request carries the cluster's bearer token when it has one.
import { Client } from 'undici';
import { DriftwoodError } from '../../storage/errors.js';
import { errorFromWire } from '../broker/controller-requests.js';
import { callerHeaders, clientOptions, type CallerSecurity } from './security.js';

/**
 * Requests in flight to one peer at most. undici sends one request at a time per Client
 * unless `pipelining` allows more, even over HTTP/2, and never sends a POST while another
 * request runs unless it is marked `idempotent` (which only lifts that ordering; undici's
 * Client does not retry). Without both, a heartbeat waits behind a replica fetch's long poll
 * (measured: 5 concurrent 1 s POSTs took 5.0 s; with both, 1.0 s).
 */
const STREAMS_PER_PEER_MAX = 100;

export class PeerClients {
  private readonly clients: Map<number, Client>;
  private readonly headers: Record<string, string>;

  /** `peers`: id -> origin URL ('http://host:port', or https:// with TLS). */
  constructor(peers: ReadonlyMap<number, string>, caller: CallerSecurity = {}) {
    this.clients = new Map([...peers].map(([id, url]) => [id, new Client(url, clientOptions(caller, { pipelining: STREAMS_PER_PEER_MAX }))]));
    this.headers = callerHeaders(caller);
  }

  /**
   * A JSON request to node `to`, answered with JSON. Rejects with the peer's DriftwoodError,
   * or with REQUEST_TIMED_OUT when it cannot be reached or does not answer in time (the
   * outcome of a change is then unknown).
   */
  async json<T>(to: number, method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<T> {
    const bytes = await this.exchange(to, method, path, body, timeoutMs);
    if (bytes.length === 0) return null as T;
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      throw new DriftwoodError('CORRUPT_MESSAGE', `node ${to} answered ${path} with something other than JSON`);
    }
  }

  /** A JSON request answered with bytes (a replica fetch); errors as for json(). */
  binary(to: number, path: string, body: unknown, timeoutMs: number): Promise<Buffer> {
    return this.exchange(to, 'POST', path, body, timeoutMs);
  }

  /** Sends the request and reads the whole answer; a failure answer becomes its DriftwoodError. */
  private async exchange(to: number, method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<Buffer> {
    const client = this.clients.get(to);
    if (client === undefined) throw new DriftwoodError('INVALID_REQUEST', `node ${to} is not a peer`);
    let statusCode: number;
    let bytes: Buffer;
    try {
      const response = await client.request({
        method,
        path,
        idempotent: true,
        headers: body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      statusCode = response.statusCode;
      bytes = Buffer.from(await response.body.arrayBuffer());
    } catch (error) {
      // Not sent, or no whole answer: the outcome is unknown.
      throw new DriftwoodError('REQUEST_TIMED_OUT', `node ${to} did not answer: ${error instanceof Error ? error.message : String(error)}`, { nodeId: to });
    }
    if (statusCode < 300) return bytes;
    let answer: Record<string, unknown> = {};
    try {
      answer = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      // not JSON: the status says enough
    }
    throw errorFromWire(answer, `HTTP ${statusCode}`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.destroy()));
  }
}
