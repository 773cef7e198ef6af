// Bearer-token authentication for a node's routes (--auth-token-file): which routes need the
// cluster's token, and whether a request carries it. One shared token, not users: it keeps
// strangers off the internal routes (Raft, replica fetch, controller requests) and off every
// change, while reads of data and metadata stay open unless --auth-reads token says otherwise.
import assert from 'node:assert/strict';
import { createHash, timingSafeEqual } from 'node:crypto';
import { DriftwoodError } from '../../storage/errors.js';

/** What a route is, for authentication. */
export type RouteClass = 'internal' | 'mutating' | 'read' | 'probe';
/** Whether GET routes of data and metadata need the token ('token') or not ('open'). */
export type AuthReads = 'open' | 'token';

export interface AuthPolicy {
  /** The cluster's bearer token (trimmed, visible ASCII). */
  readonly token: string;
  readonly reads: AuthReads;
}

/** Routes every load balancer and orchestrator probes without credentials; they carry no data. */
const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);
const INTERNAL_PREFIX = '/internal/';

/**
 * The class of a request. `path` is the matched route's pattern when there is one (so an
 * encoded or oddly written URL cannot dress an internal route up as something else), else the
 * raw path; a query string is ignored.
 */
export function classifyRoute(method: string, path: string): RouteClass {
  const bare = path.split('?', 1)[0] ?? '';
  if (bare.startsWith(INTERNAL_PREFIX)) return 'internal';
  const reading = method === 'GET' || method === 'HEAD';
  if (reading && PROBE_PATHS.has(bare)) return 'probe';
  return reading ? 'read' : 'mutating';
}

/** Whether a route of this class needs the token under `reads`. */
export function needsToken(routeClass: RouteClass, reads: AuthReads): boolean {
  if (routeClass === 'probe') return false;
  if (routeClass === 'read') return reads === 'token';
  return true;
}

/** A token is at most this long; anything longer is not a token but a mistake (a wrong file). */
export const TOKEN_BYTES_MAX = 4096;
/** Visible ASCII: what fits in an Authorization header unquoted and survives copy and paste. */
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/** The problem with `token` as a bearer token, or null when it is fine. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return 'is empty';
  if (Buffer.byteLength(token) > TOKEN_BYTES_MAX) return `is longer than ${TOKEN_BYTES_MAX} bytes`;
  if (!TOKEN_PATTERN.test(token)) return 'has characters other than visible ASCII (no spaces or control characters)';
  return null;
}

/**
 * Checks Authorization headers against the token in constant time: both sides are hashed with
 * SHA-256 first, so timingSafeEqual compares equal-length digests and neither the token's
 * length nor its first differing byte shows in the time taken.
 */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    assert.equal(tokenProblem(token), null, 'the token was checked when it was read');
    this.expected = digest(token);
  }

  /** Throws AUTHENTICATION_FAILED unless `header` is "Bearer <the token>". Never echoes the header. */
  check(header: string | string[] | undefined): void {
    if (header === undefined || header.length === 0) throw new DriftwoodError('AUTHENTICATION_FAILED', 'the request has no Authorization header');
    if (Array.isArray(header)) throw new DriftwoodError('AUTHENTICATION_FAILED', 'the request has more than one Authorization header');
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (match === null) throw new DriftwoodError('AUTHENTICATION_FAILED', 'the Authorization header is not "Bearer <token>"');
    const given = digest(match[1] ?? '');
    assert.equal(given.length, this.expected.length);
    if (!timingSafeEqual(given, this.expected)) throw new DriftwoodError('AUTHENTICATION_FAILED', 'the bearer token is wrong');
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The header a caller sends the token in, or none without a token. */
export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
