// One undici HTTP/2 Client per broker address (h2c, or TLS with the tls option), opened on first use and shared by
// every request this client sends there. undici sends one request at a time per Client unless
// `pipelining` allows more, and holds a POST behind any running request unless it is marked
// idempotent (which only lifts that ordering: a Client never retries by itself), so both are
// set; otherwise a produce or a heartbeat waits behind a consumer's long poll.
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { DriftwoodError } from '../../storage/errors.js';
import { errorFromWire } from '../broker/controller-requests.js';
import { callerHeaders, clientOptions, originOf, type CallerSecurity } from '../http/security.js';

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  /** JSON-encoded unless it is already bytes. */
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** How long close() waits for requests in flight before it ends their connections by force. */
const CLOSE_GRACE_MS_DEFAULT = 5000;

/** Socket error codes that prove the request never reached the broker. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export class Connections {
  private readonly clients = new Map<string, Client>();
  private closed = false;
  private readonly headers: Record<string, string>;

  /** `security`: the token every request carries, and TLS (default: neither). */
  constructor(private readonly requestsPerBrokerMax: number, private readonly security: CallerSecurity = {}) {
    assert(Number.isInteger(requestsPerBrokerMax) && requestsPerBrokerMax > 0);
    this.headers = callerHeaders(security);
  }

  /**
   * Sends one request to `address` ("host:port") and reads the whole answer, whatever its
   * status. Rejects with NETWORK_EXCEPTION when the broker cannot be reached or drops the
   * connection (hint `sent: false` when it certainly never got the request),
   * REQUEST_TIMED_OUT when it does not answer within timeoutMs (the outcome is unknown), and
   * CLIENT_CLOSED once close() has begun.
   */
  async request(address: string, request: HttpRequest): Promise<HttpAnswer> {
    if (this.closed) throw new DriftwoodError('CLIENT_CLOSED', `no request to ${address} after close`);
    assert(request.timeoutMs > 0, 'a request has a positive timeout');
    const client = this.client(address);
    const body = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : JSON.stringify(request.body);
    try {
      const response = await client.request({
        method: request.method,
        path: request.path,
        idempotent: true,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
        headers: body === undefined ? this.headers : { ...this.headers, 'content-type': request.contentType ?? 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      return { status: response.statusCode, headers: response.headers, body: bytes };
    } catch (error) {
      throw this.transportError(address, request, error);
    }
  }

  /** A request answered with JSON; an error answer becomes its DriftwoodError. */
  async json<T>(address: string, request: HttpRequest): Promise<T> {
    const answer = await this.request(address, request);
    if (answer.status >= 300) throw errorFromAnswer(answer);
    if (answer.body.length === 0) return null as T;
    try {
      return JSON.parse(answer.body.toString('utf8')) as T;
    } catch {
      throw new DriftwoodError('CORRUPT_MESSAGE', `${address} answered ${request.path} with something other than JSON`);
    }
  }

  /**
   * Closes every connection once the requests in flight on it are answered, or after `graceMs`
   * by force. Destroying a connection while its streams still receive crashes Node 20's HTTP/2
   * binding now and then (heap corruption, "malloc(): mismatching next->prev_size"; it took a
   * few hundred consumers closed mid long poll here, every run), so force is the last resort,
   * for a broker that does not answer at all.
   */
  async close(graceMs = CLOSE_GRACE_MS_DEFAULT): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map(async (client) => {
      let cancel = (): void => undefined;
      const late = new Promise<false>((resolve) => {
        const timer = setTimeout(() => { resolve(false); }, graceMs);
        cancel = () => { clearTimeout(timer); };
      });
      const closed = await Promise.race([client.close().then(() => true as const, () => true as const), late]);
      cancel();
      if (!closed) await client.destroy();
    }));
  }

  private client(address: string): Client {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new Client(originOf(address, this.security), clientOptions(this.security, { pipelining: this.requestsPerBrokerMax }));
      this.clients.set(address, client);
    }
    return client;
  }

  private transportError(address: string, request: HttpRequest, error: unknown): DriftwoodError {
    if (this.closed) return new DriftwoodError('CLIENT_CLOSED', `${request.method} ${request.path} ended by close`);
    const code = (error as { code?: unknown }).code;
    const text = error instanceof Error ? error.message : String(error);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new DriftwoodError('REQUEST_TIMED_OUT', `${address} did not answer ${request.method} ${request.path} within ${request.timeoutMs} ms`, { address });
    }
    const sent = !(typeof code === 'string' && NOT_SENT_CODES.has(code));
    return new DriftwoodError('NETWORK_EXCEPTION', `${address}: ${text}`, { address, sent });
  }
}

/** A non-2xx answer as the DriftwoodError it carries ({error, message, ...hints}). */
export function errorFromAnswer(answer: HttpAnswer): DriftwoodError {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(answer.body.toString('utf8'));
  } catch {
    // not JSON: the status says what there is to say
  }
  const fields = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  return errorFromWire(fields, `HTTP ${answer.status}`);
}

/** One header of an answer as a number, or undefined when absent or not a number. */
export function numberHeader(answer: HttpAnswer, name: string): number | undefined {
  const value = answer.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.length === 0) return undefined;
  const number = Number(text);
  return Number.isSafeInteger(number) ? number : undefined;
}
