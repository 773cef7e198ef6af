// What every `driftwood` subcommand shares: where it writes (CommandIO), the usage error that
// means exit code 2, the client flags (--bootstrap, --json, --help), the one-line error format
// and aligned tables. Commands that talk to a cluster are built on src/client.
import { isDriftwoodError } from '../../storage/errors.js';
import { normalizeAddress } from '../client/options.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure the command has already described on stderr: exit code 1 and nothing more printed. */
export class ReportedFailure extends Error {
  override readonly name: string = 'ReportedFailure';
}

/** Where a command writes: the process's streams for real, buffers in tests. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Where `produce` reads its lines (default: process.stdin). */
  stdin?: AsyncIterable<string | Buffer>;
  /** Ends a command that runs until interrupted (default: SIGINT or SIGTERM to the process). */
  interrupt?: AbortSignal;
  /** Aborted when stdout's reader has gone (`driftwood consume t | head -1`): a running command stops as if interrupted. */
  outputClosed?: AbortSignal;
  /** Environment variables (default: process.env); DRIFTWOOD_BOOTSTRAP is read from here. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The local cluster `driftwood cluster run` (make cluster) starts. */
export const DEFAULT_BOOTSTRAP = '127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093';
/** Addresses one --bootstrap may name (the client library's own bound is higher). */
const BOOTSTRAP_ADDRESSES_MAX = 100;

/** The flags of every command that talks to a cluster (security-flags.ts reads the last three). */
export const clientFlags = {
  bootstrap: { type: 'string' },
  'token-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  tls: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const helpFlag = { help: { type: 'boolean', short: 'h', default: false } } as const;

/** --bootstrap, else DRIFTWOOD_BOOTSTRAP, else the local cluster; each address checked. */
export function bootstrapFrom(flag: string | undefined, io: CommandIO): string[] {
  const env = io.env ?? process.env;
  const text = flag ?? env.DRIFTWOOD_BOOTSTRAP ?? DEFAULT_BOOTSTRAP;
  const addresses = text.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
  if (addresses.length === 0) throw new UsageError('--bootstrap names at least one HOST:PORT');
  if (addresses.length > BOOTSTRAP_ADDRESSES_MAX) throw new UsageError(`--bootstrap names at most ${BOOTSTRAP_ADDRESSES_MAX} addresses`);
  return addresses.map((address) => {
    try {
      return normalizeAddress(address);
    } catch {
      throw new UsageError(`--bootstrap is HOST:PORT[,HOST:PORT...]; '${address}' is not`);
    }
  });
}

/** An integer flag within [min, max], or its default when absent. */
export function integerFlag(name: string, value: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const parsed = /^-?[0-9]+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, got '${value}'`);
  }
  return parsed;
}

/** Exactly `count` positionals, named in the message when missing or extra. */
export function positionals(given: string[], names: readonly string[], command: string): string[] {
  if (given.length < names.length) throw new UsageError(`${command}: missing ${names.slice(given.length).join(' ')}`);
  if (given.length > names.length) throw new UsageError(`${command}: unexpected argument '${given[names.length] ?? ''}'`);
  return given;
}

/** One JSON document on stdout. */
export function printJson(io: CommandIO, value: unknown): void {
  io.stdout(`${JSON.stringify(value)}\n`);
}

/** The error as one line without a stack: "CODE: message" for cluster errors. */
export function errorText(error: unknown): string {
  let text = isDriftwoodError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
  // node:util's "Unknown option '--x'. To specify a positional argument starting with a '-', ..." needs only its first sentence here.
  if (error instanceof Error && 'code' in error && error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') text = text.split('. ')[0] ?? text;
  return text.replace(/\s*\n\s*/g, ' ');
}

/** Whether an error means bad usage (exit code 2) rather than a failed operation (1). */
export function isUsageError(error: unknown): boolean {
  if (error instanceof UsageError) return true;
  return error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS');
}

/** Rows as aligned columns under a header; the last column is not padded. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].map((l) => `${l}\n`).join('');
}

/** "key  value" lines with the keys aligned. */
export function fields(entries: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...entries.map(([key]) => key.length));
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width + 1)}  ${value}\n`).join('');
}

/** A value for a table cell: '-' for null or undefined. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(String).join(',');
  return typeof value === 'string' ? value : JSON.stringify(value);
}
