// What every client (Producer, Consumer, Admin) is configured with: where the cluster is, how
// long one request may take, how retries back off. Defaults follow Kafka's client configs
// (request.timeout.ms, retry.backoff.ms, retry.backoff.max.ms, metadata.max.age.ms).
import { DriftwoodError } from '../../storage/errors.js';
import { tokenProblem } from '../http/auth.js';
import type { CallerSecurity } from '../http/security.js';

export interface ClientOptions {
  /** Any nodes of the cluster as "host:port" (or "http://host:port"); one answering is enough. */
  readonly bootstrap: readonly string[];
  /** Names this client to the brokers (group members show it). */
  readonly clientId?: string;
  /** How long one request may wait for its answer (default 30000). */
  readonly requestTimeoutMs?: number;
  /** The first wait before a retry (default 100); it doubles per attempt, except after a leader moved (the producer looks it up again and retries at this pace). */
  readonly retryBackoffMs?: number;
  /** The longest wait before a retry (default 1000). */
  readonly retryBackoffMsMax?: number;
  /** Cached topic metadata older than this is fetched again before use (default 300000). */
  readonly metadataMaxAgeMs?: number;
  /** Requests in flight to one broker at most (HTTP/2 streams on its one connection; default 100). */
  readonly requestsPerBrokerMax?: number;
  /** The cluster's bearer token (nodes started with --auth-token-file need it); sent on every request. */
  readonly token?: string;
  /** Present when the nodes serve TLS: `ca` (PEM) verifies their certificates (default: the system's CAs). */
  readonly tls?: { readonly ca?: string | Buffer };
}

export interface ResolvedClientOptions {
  readonly bootstrap: readonly string[];
  readonly clientId: string;
  readonly requestTimeoutMs: number;
  readonly retryBackoffMs: number;
  readonly retryBackoffMsMax: number;
  readonly metadataMaxAgeMs: number;
  readonly requestsPerBrokerMax: number;
  readonly security: CallerSecurity;
}

/** Bootstrap addresses one client may name. */
const BOOTSTRAP_ADDRESSES_MAX = 1000;
const TIMEOUT_MS_MAX = 3_600_000;

export function resolveClientOptions(options: ClientOptions, kind: string): ResolvedClientOptions {
  if (!Array.isArray(options.bootstrap) || options.bootstrap.length === 0) {
    throw new DriftwoodError('INVALID_CONFIG', 'bootstrap names at least one node address ("host:port")');
  }
  if (options.bootstrap.length > BOOTSTRAP_ADDRESSES_MAX) throw new DriftwoodError('INVALID_CONFIG', `bootstrap names at most ${BOOTSTRAP_ADDRESSES_MAX} addresses`);
  const resolved = {
    bootstrap: options.bootstrap.map(normalizeAddress),
    clientId: options.clientId ?? `driftwood-${kind}`,
    requestTimeoutMs: checkedInteger('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1, TIMEOUT_MS_MAX),
    retryBackoffMs: checkedInteger('retryBackoffMs', options.retryBackoffMs, 100, 0, TIMEOUT_MS_MAX),
    retryBackoffMsMax: checkedInteger('retryBackoffMsMax', options.retryBackoffMsMax, 1000, 0, TIMEOUT_MS_MAX),
    metadataMaxAgeMs: checkedInteger('metadataMaxAgeMs', options.metadataMaxAgeMs, 300_000, 0, 24 * TIMEOUT_MS_MAX),
    requestsPerBrokerMax: checkedInteger('requestsPerBrokerMax', options.requestsPerBrokerMax, 100, 1, 1000),
    security: checkedSecurity(options),
  };
  if (resolved.retryBackoffMsMax < resolved.retryBackoffMs) throw new DriftwoodError('INVALID_CONFIG', 'retryBackoffMsMax is below retryBackoffMs');
  return resolved;
}

function checkedSecurity(options: ClientOptions): CallerSecurity {
  const { token, tls } = options;
  if (token !== undefined) {
    const problem = typeof token === 'string' ? tokenProblem(token) : 'is not a string';
    if (problem !== null) throw new DriftwoodError('INVALID_CONFIG', `the token ${problem}`);
  }
  if (tls !== undefined) {
    // Checked at run time for JavaScript callers, whatever the types say.
    if (typeof tls !== 'object' || (tls as unknown) === null) throw new DriftwoodError('INVALID_CONFIG', 'tls is an object ({ ca?: PEM })');
    if (tls.ca !== undefined && typeof tls.ca !== 'string' && !Buffer.isBuffer(tls.ca)) throw new DriftwoodError('INVALID_CONFIG', 'tls.ca is a PEM string or Buffer');
  }
  return { ...(token === undefined ? {} : { token }), ...(tls === undefined ? {} : { tls: tls.ca === undefined ? {} : { ca: tls.ca } }) };
}

/** An option that is an integer within [min, max], or its default when absent. */
export function checkedInteger(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new DriftwoodError('INVALID_CONFIG', `${name} is an integer in [${min}, ${max}], not ${String(value)}`);
  }
  return value;
}

/** "host:port" from "host:port" or "http://host:port"; the form brokers list themselves in. */
export function normalizeAddress(address: string): string {
  if (typeof address !== 'string' || address.length === 0) throw new DriftwoodError('INVALID_CONFIG', 'a node address is "host:port"');
  const withScheme = address.includes('://') ? address : `http://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new DriftwoodError('INVALID_CONFIG', `${address} is not a node address ("host:port")`);
  }
  // Over TLS too an address is host:port: the scheme is the tls option's to choose.
  if (url.protocol !== 'http:' || url.port === '' || url.pathname !== '/') {
    throw new DriftwoodError('INVALID_CONFIG', `${address} is not a node address ("host:port"; TLS is the tls option)`);
  }
  return url.host;
}
