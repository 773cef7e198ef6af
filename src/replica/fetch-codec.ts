// The replica fetch answer on the wire: a 4-byte length, a JSON header describing each
// partition's answer, then the record bytes of every 'records' answer back to back, in
// header order. Batches travel as the bytes they are on disk; nothing is base64'd or parsed.
import { DriftwoodError, errorCodes, type ErrorCode } from '../../storage/errors.js';
import type { PartitionAnswer, ReplicaFetchResponse } from './fetch-protocol.js';

const HEADER_BYTES_MAX = 64 * 1024 * 1024;

export function encodeFetchResponse(response: ReplicaFetchResponse): Buffer {
  const chunks: Buffer[] = [];
  const partitions = response.partitions.map((answer): Record<string, unknown> => {
    if (answer.kind !== 'records') return { ...answer };
    chunks.push(answer.bytes);
    const { bytes, ...rest } = answer;
    return { ...rest, bytesLength: bytes.length };
  });
  const header = Buffer.from(JSON.stringify({ sessionId: response.sessionId, sessionError: response.sessionError, partitions }), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length, 0);
  return Buffer.concat([length, header, ...chunks]);
}

/** Decodes and checks an answer; anything malformed is CORRUPT_MESSAGE (the follower retries with a new session). */
export function decodeFetchResponse(buffer: Buffer): ReplicaFetchResponse {
  const bad = (why: string): DriftwoodError => new DriftwoodError('CORRUPT_MESSAGE', `replica fetch answer: ${why}`);
  if (buffer.length < 4) throw bad('shorter than its length prefix');
  const headerLength = buffer.readUInt32BE(0);
  if (headerLength > HEADER_BYTES_MAX || 4 + headerLength > buffer.length) throw bad('header length out of range');
  let parsed: unknown;
  try {
    parsed = JSON.parse(buffer.subarray(4, 4 + headerLength).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  const header = parsed as { sessionId?: unknown; sessionError?: unknown; partitions?: unknown };
  if (!Number.isSafeInteger(header.sessionId) || !Array.isArray(header.partitions)) throw bad('no sessionId or partitions');
  let position = 4 + headerLength;
  const int = (value: unknown): value is number => Number.isSafeInteger(value);
  const partitions = (header.partitions as unknown[]).map((raw): PartitionAnswer => {
    const answer = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const { topicId, partition, highWatermark, logStartOffset } = answer;
    if (typeof topicId !== 'string' || !int(partition) || !int(highWatermark) || !int(logStartOffset)) throw bad('a partition lacks its fields');
    const base = { topicId, partition, highWatermark, logStartOffset };
    switch (answer.kind) {
      case 'records': {
        const length = answer.bytesLength;
        if (!int(length) || length < 0 || position + length > buffer.length) throw bad('records run past the end');
        const bytes = buffer.subarray(position, position + length);
        position += length;
        return { ...base, kind: 'records', bytes };
      }
      case 'diverging':
        if (!int(answer.epoch) || !int(answer.endOffset)) throw bad('a divergence lacks its epoch');
        return { ...base, kind: 'diverging', epoch: answer.epoch, endOffset: answer.endOffset };
      case 'start-over':
        return { ...base, kind: 'start-over' };
      case 'error':
        if (typeof answer.error !== 'string' || !(answer.error in errorCodes)) throw bad(`unknown error ${String(answer.error)}`);
        return { ...base, kind: 'error', error: answer.error as ErrorCode, message: typeof answer.message === 'string' ? answer.message : '' };
      default:
        throw bad('unknown answer kind');
    }
  });
  if (position !== buffer.length) throw bad('bytes after the last partition');
  const sessionError = header.sessionError;
  if (sessionError !== undefined && sessionError !== 'FETCH_SESSION_ID_NOT_FOUND' && sessionError !== 'INVALID_FETCH_SESSION_EPOCH') throw bad('unknown session error');
  return { sessionId: header.sessionId as number, ...(sessionError === undefined ? {} : { sessionError }), partitions };
}
