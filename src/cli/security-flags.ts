// The security flags: a node's --auth-token-file, --auth-reads, --tls-cert, --tls-key and
// --tls-ca, and a client command's --token-file and --tls-ca. Files are read here, once, before
// anything starts; a flag that is wrong, alone where it needs a partner, or names a bad file is
// a usage error (exit code 2, one line that names the flag and never a secret).
import { DriftwoodError } from '../../storage/errors.js';
import type { AuthReads } from '../http/auth.js';
import { readPemFile, readTokenFile } from '../http/node-credentials.js';
import type { CallerSecurity, NodeSecurity } from '../http/security.js';
import { bootstrapFrom, UsageError, type CommandIO } from './io.js';

export const nodeSecurityFlags = {
  'auth-token-file': { type: 'string' },
  'auth-reads': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
} as const;

export interface NodeSecurityValues {
  'auth-token-file'?: string | undefined;
  'auth-reads'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'tls-ca'?: string | undefined;
}

export const NODE_SECURITY_USAGE = `[--auth-token-file FILE [--auth-reads open|token]]
        [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]`;

/** A node's NodeSecurity from its flags. */
export async function nodeSecurityFrom(values: NodeSecurityValues): Promise<NodeSecurity> {
  const readsFlag = values['auth-reads'];
  if (readsFlag !== undefined && readsFlag !== 'open' && readsFlag !== 'token') throw new UsageError(`--auth-reads must be open or token, got '${readsFlag}'`);
  const reads: AuthReads | undefined = readsFlag;
  const tokenFile = values['auth-token-file'];
  if (reads !== undefined && tokenFile === undefined) throw new UsageError('--auth-reads needs --auth-token-file');
  const { 'tls-cert': certFile, 'tls-key': keyFile, 'tls-ca': caFile } = values;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (caFile !== undefined && certFile === undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key (every node of a cluster serves TLS or none does)');
  return usage(async () => {
    const auth = tokenFile === undefined ? undefined : { token: await readTokenFile(tokenFile, '--auth-token-file'), reads: reads ?? 'open' };
    const tls = certFile === undefined || keyFile === undefined ? undefined : {
      cert: await readPemFile(certFile, '--tls-cert'),
      key: await readPemFile(keyFile, '--tls-key'),
      ...(caFile === undefined ? {} : { ca: await readPemFile(caFile, '--tls-ca') }),
    };
    return { ...(auth === undefined ? {} : { auth }), ...(tls === undefined ? {} : { tls }) };
  });
}

export interface CallerSecurityValues {
  'token-file'?: string | undefined;
  'tls-ca'?: string | undefined;
  tls?: boolean | undefined;
}

/**
 * A client command's CallerSecurity: --token-file (else $DRIFTWOOD_TOKEN_FILE), and TLS when
 * --tls-ca (else $DRIFTWOOD_TLS_CA) names a CA, or --tls asks for it with the system's CAs.
 */
export async function callerSecurityFrom(values: CallerSecurityValues, env: Readonly<Record<string, string | undefined>>): Promise<CallerSecurity> {
  const tokenFile = values['token-file'] ?? nonEmpty(env.DRIFTWOOD_TOKEN_FILE);
  const caFile = values['tls-ca'] ?? nonEmpty(env.DRIFTWOOD_TLS_CA);
  return usage(async () => {
    const token = tokenFile === undefined ? undefined : await readTokenFile(tokenFile, values['token-file'] === undefined ? 'DRIFTWOOD_TOKEN_FILE' : '--token-file');
    const ca = caFile === undefined ? undefined : await readPemFile(caFile, values['tls-ca'] === undefined ? 'DRIFTWOOD_TLS_CA' : '--tls-ca');
    const tls = ca !== undefined ? { ca } : values.tls === true ? {} : undefined;
    return { ...(token === undefined ? {} : { token }), ...(tls === undefined ? {} : { tls }) };
  });
}

/** Where a client command connects and how: the client options it hands the library. */
export interface ClientTarget extends CallerSecurity {
  readonly bootstrap: readonly string[];
}

/** --bootstrap and the security flags of a client command (io.ts's clientFlags). */
export async function clientTargetFrom(values: { bootstrap?: string | undefined } & CallerSecurityValues, io: CommandIO): Promise<ClientTarget> {
  const bootstrap = bootstrapFrom(values.bootstrap, io);
  return { bootstrap, ...(await callerSecurityFrom(values, io.env ?? process.env)) };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** A bad file is bad usage, not a failed operation. */
async function usage<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof DriftwoodError && error.code === 'INVALID_CONFIG') throw new UsageError(error.message.replace(/^A configuration value is invalid: /, ''));
    throw error;
  }
}
