// Raft messages on the wire: JSON, with byte fields (entry data, snapshot chunks) as base64.
// Decoding checks the shape, so a malformed or hostile body is refused with INVALID_REQUEST
// rather than reaching the Raft core.
import type { Entry, Message } from '../../raft/index.js';
import { DriftwoodError } from '../../storage/errors.js';

/** A limit on messages in one request body. */
export const MESSAGES_PER_REQUEST_MAX = 4096;

type Wire = Record<string, unknown>;

export function encodeMessages(messages: readonly Message[]): string {
  return JSON.stringify(messages.map(toWire));
}

function toWire(message: Message): Wire {
  switch (message.type) {
    case 'append':
      return { ...message, entries: message.entries.map((entry) => ({ ...entry, data: Buffer.from(entry.data).toString('base64') })) };
    case 'snapshot':
      return { ...message, chunk: Buffer.from(message.chunk).toString('base64') };
    default:
      return { ...message };
  }
}

export function decodeMessages(body: unknown): Message[] {
  if (!Array.isArray(body)) throw invalid('the body must be a JSON array of messages');
  if (body.length > MESSAGES_PER_REQUEST_MAX) throw invalid(`more than ${MESSAGES_PER_REQUEST_MAX} messages`);
  return body.map((item, i) => fromWire(item, i));
}

/** The fields of each message type besides from, to and term: integers >= 0 or booleans. */
const fieldsOf: Record<string, Record<string, 'count' | 'bool'>> = {
  preVote: { lastIndex: 'count', lastTerm: 'count' },
  preVoteResponse: { granted: 'bool' },
  vote: { lastIndex: 'count', lastTerm: 'count', transfer: 'bool' },
  voteResponse: { granted: 'bool' },
  append: { prevIndex: 'count', prevTerm: 'count', commit: 'count' },
  appendResponse: { success: 'bool', index: 'count', hintIndex: 'count', hintTerm: 'count' },
  heartbeat: { commit: 'count', context: 'count' },
  heartbeatResponse: { context: 'count' },
  snapshot: { offset: 'count', done: 'bool' },
  snapshotResponse: { offset: 'count', done: 'bool', rejected: 'bool' },
  timeoutNow: {},
};

function fromWire(item: unknown, i: number): Message {
  if (typeof item !== 'object' || item === null) throw invalid(`message ${i} is not an object`);
  const wire = item as Wire;
  for (const field of ['from', 'to', 'term']) {
    if (!isCount(wire[field])) throw invalid(`message ${i}: ${field} must be a non-negative integer`);
  }
  const fields = typeof wire.type === 'string' ? fieldsOf[wire.type] : undefined;
  if (fields === undefined) throw invalid(`message ${i}: unknown type ${String(wire.type)}`);
  for (const [field, kind] of Object.entries(fields)) {
    const ok = kind === 'count' ? isCount(wire[field]) : typeof wire[field] === 'boolean';
    if (!ok) throw invalid(`message ${i} (${String(wire.type)}): ${field} must be ${kind === 'count' ? 'a non-negative integer' : 'a boolean'}`);
  }
  if (wire.type === 'append') {
    if (!Array.isArray(wire.entries)) throw invalid(`message ${i}: entries must be an array`);
    return { ...wire, entries: wire.entries.map((entry, j) => entryFromWire(entry, i, j)) } as unknown as Message;
  }
  if (wire.type === 'snapshot') {
    if (typeof wire.chunk !== 'string') throw invalid(`message ${i}: chunk must be base64`);
    const meta = wire.meta as Wire | null | undefined;
    const ids = (value: unknown): boolean => Array.isArray(value) && value.every(isCount);
    if (typeof meta !== 'object' || meta === null || !isCount(meta.index) || !isCount(meta.term) || !ids(meta.voters) || !ids(meta.observers)) {
      throw invalid(`message ${i}: snapshot meta must have index, term, voters and observers`);
    }
    return { ...wire, chunk: new Uint8Array(Buffer.from(wire.chunk, 'base64')) } as unknown as Message;
  }
  return wire as unknown as Message;
}

function entryFromWire(item: unknown, i: number, j: number): Entry {
  if (typeof item !== 'object' || item === null) throw invalid(`message ${i} entry ${j} is not an object`);
  const wire = item as Wire;
  if (!isCount(wire.index) || !isCount(wire.term)) throw invalid(`message ${i} entry ${j}: index and term must be integers`);
  if (wire.type !== 'normal' && wire.type !== 'noop') throw invalid(`message ${i} entry ${j}: unknown type`);
  if (typeof wire.data !== 'string') throw invalid(`message ${i} entry ${j}: data must be base64`);
  return { index: wire.index, term: wire.term, type: wire.type, data: new Uint8Array(Buffer.from(wire.data, 'base64')) };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function invalid(detail: string): DriftwoodError {
  return new DriftwoodError('INVALID_REQUEST', detail);
}
