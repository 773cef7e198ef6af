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
  private readonly clients = new Map<number, { readonly url: string; readonly client: Client }>();
  private readonly headers: Record<string, string>;
  private closed = false;

  /**
   * `peers`: id -> origin URL ('http://host:port', or https:// with TLS), read at every
   * request: the owner may change it (brokers joining or registering a new address), and a
   * client is opened on first use and replaced when the URL changed.
   */
  constructor(private readonly peers: ReadonlyMap<number, string>, private readonly caller: CallerSecurity = {}) {
    this.headers = callerHeaders(caller);
  }

  private client(to: number): Client {
    const url = this.peers.get(to);
    const current = this.clients.get(to);
    if (current !== undefined && current.url === url) return current.client;
    if (current !== undefined) {
      this.clients.delete(to);
      // Requests still running on the old address finish or fail on their own.
      void current.client.close().catch(() => undefined);
    }
    if (url === undefined) throw new DriftwoodError('INVALID_REQUEST', `node ${to} is not a peer (no known address)`);
    if (this.closed) throw new DriftwoodError('REQUEST_TIMED_OUT', `node ${to} not reached: the clients are closed`, { nodeId: to });
    const client = new Client(url, clientOptions(this.caller, { pipelining: STREAMS_PER_PEER_MAX }));
    this.clients.set(to, { url, client });
    return client;
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
    const client = this.client(to);
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
    this.closed = true;
    await Promise.all([...this.clients.values()].map(({ client }) => client.destroy()));
  }
}
