// The node's logger: pino (fastify's own logger), with the node id bound to every line. JSON
// lines for machines, or one short human line per event for `make cluster`. Logs go to
// stderr; stdout stays for a command's output. Request headers are never logged (they may
// carry the auth token): fastify's request logging is off and ours names only the route.
import { pino, type Logger } from 'pino';
import type { Log } from '../../storage/observe.js';

export const logFormats = ['json', 'pretty'] as const;
export type LogFormat = (typeof logFormats)[number];
export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface NodeLoggerOptions {
  readonly nodeId: number;
  readonly format: LogFormat;
  readonly level: LogLevel;
  /** Where lines go (default: stderr, written synchronously so a fatal line precedes exit). */
  readonly write?: (line: string) => void;
}

/** Paths pino replaces wherever a caller passes them by mistake. */
const REDACTED_PATHS = ['headers', 'req.headers', 'request.headers', '*.authorization', 'authorization', 'token'];

export function createNodeLogger(options: NodeLoggerOptions): Logger {
  const write = options.write ?? ((line: string) => { process.stderr.write(line); });
  const destination = { write: options.format === 'json' ? write : (line: string) => { write(prettyLine(line)); } };
  return pino({
    level: options.level,
    base: { nodeId: options.nodeId },
    timestamp: pino.stdTimeFunctions.epochTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  }, destination);
}

/** The Log port core code writes through, bound to a pino logger. */
export function logPort(logger: Logger): Log {
  return {
    debug: (fields, message) => { logger.debug(fields, message); },
    info: (fields, message) => { logger.info(fields, message); },
    warn: (fields, message) => { logger.warn(fields, message); },
    error: (fields, message) => { logger.error(fields, message); },
  };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields the pretty line shows in its fixed part, not as key=value. */
const FIXED_FIELDS = new Set(['level', 'time', 'nodeId', 'msg']);

/** "12:04:05.123 INFO  node 1: message key=value ..." from one pino JSON line. */
export function prettyLine(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '--:--:--.---';
  const level = (typeof entry.level === 'number' ? LEVEL_NAMES[entry.level] : undefined) ?? String(entry.level);
  const rest = Object.entries(entry).filter(([key]) => !FIXED_FIELDS.has(key)).map(([key, value]) => `${key}=${formatValue(value)}`);
  const text = [`${time} ${level.padEnd(5)} node ${String(entry.nodeId)}: ${typeof entry.msg === 'string' ? entry.msg : ''}`, ...rest].join(' ');
  return `${text}\n`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value !== null && typeof value === 'object' && 'stack' in value && typeof value.stack === 'string') return `\n${value.stack}`;
  return JSON.stringify(value);
}
