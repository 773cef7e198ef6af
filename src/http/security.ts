// A node's security settings (bearer token, TLS) and what follows from them for everything that
// calls a node: peers and the client library build their undici Clients and headers here, so
// a cluster's nodes and its clients agree on scheme, protocol and credentials in one place.
// Every node of a cluster uses the same settings; peer addresses stay HOST:PORT and the scheme
// follows the TLS setting.
import type { Client } from 'undici';
import { authorizationHeader, type AuthPolicy } from './auth.js';

export interface TlsServerFiles {
  /** PEM certificate chain this node presents. */
  readonly cert: Buffer;
  /** PEM private key of that certificate. */
  readonly key: Buffer;
  /** PEM CA bundle peers' certificates are verified with (default: the system's CAs). */
  readonly ca?: Buffer;
}

export interface NodeSecurity {
  /** Routes that need the bearer token, and the token. Absent: every route is open. */
  readonly auth?: AuthPolicy;
  /** HTTP/2 over TLS (ALPN h2 and http/1.1) instead of cleartext. Absent: h2c and HTTP/1.1. */
  readonly tls?: TlsServerFiles;
}

/** What a caller needs to reach nodes: the token it sends, and TLS with the CA it trusts. */
export interface CallerSecurity {
  readonly token?: string;
  /** Present: nodes speak TLS; `ca` verifies them (default: the system's CAs). */
  readonly tls?: { readonly ca?: string | Buffer };
}

/** How a node calls its peers: with its own token and TLS setting. */
export function callerOf(node: NodeSecurity): CallerSecurity {
  return {
    ...(node.auth === undefined ? {} : { token: node.auth.token }),
    ...(node.tls === undefined ? {} : { tls: node.tls.ca === undefined ? {} : { ca: node.tls.ca } }),
  };
}

/** The origin URL of the node at "host:port". */
export function originOf(address: string, caller: CallerSecurity): string {
  return `${caller.tls === undefined ? 'http' : 'https'}://${address}`;
}

/**
 * undici Client options for a node: HTTP/2 in both cases; over TLS it is negotiated by ALPN
 * (and the certificate verified against the CA), in cleartext it is h2c prior knowledge.
 */
export function clientOptions(caller: CallerSecurity, extra: Client.Options = {}): Client.Options {
  if (caller.tls === undefined) return { ...extra, allowH2: true, useH2c: true } as Client.Options;
  const ca = caller.tls.ca;
  return { ...extra, allowH2: true, connect: { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) } };
}

/** The headers every request of this caller carries (the token, when it has one). */
export function callerHeaders(caller: CallerSecurity): Record<string, string> {
  return authorizationHeader(caller.token);
}
