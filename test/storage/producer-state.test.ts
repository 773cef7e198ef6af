// The producer state on its own (Kafka's ProducerStateManager rules): duplicates within the
// 5-batch window, gaps, epochs, sequence wrap-around, expiry, pending reservations and
// truncation.
import t from 'tap';
import { isDriftwoodError } from '../../storage/errors.js';
import {
  incrementSequence,
  inSequence,
  PRODUCER_BATCHES_CACHED_MAX,
  ProducerStateManager,
  SEQUENCE_MAX,
  type Admission,
  type PendingBatch,
} from '../../storage/producer-state.js';
import { buildBatch, readBatchHeader, type BatchHeader } from '../../storage/record-batch.js';

const NOW = 1_700_000_000_000;
const DAY = 86_400_000;

function header(producerId: number, producerEpoch: number, baseSequence: number, records = 2, timestampMs = NOW, baseOffset = 0): BatchHeader {
  const batch = buildBatch(Array.from({ length: records }, (_, i) => ({ value: Buffer.from(`v${i}`), timestampMs })), { producerId, producerEpoch, baseSequence, baseOffset });
  return readBatchHeader(batch, 0);
}

/** Admits and writes at once, as a leader whose write completes: returns the offsets used. */
function write(state: ProducerStateManager, h: BatchHeader, baseOffset: number, nowMs = NOW): Admission {
  const admission = state.admit([h], nowMs);
  if (admission.kind === 'append') for (const batch of admission.pending) state.complete(batch, baseOffset, baseOffset + h.lastOffsetDelta, nowMs);
  return admission;
}

/** The batches an admission reserved (failing the test's assertion when it reserved none). */
function pendingOf(admission: Admission): readonly PendingBatch[] {
  if (admission.kind !== 'append') throw new Error(`expected an append, got ${admission.kind}`);
  return admission.pending;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isDriftwoodError(error)) return error.code;
    throw error;
  }
  return 'accepted';
}

void t.test('sequence arithmetic wraps at 2^31-1', (t) => {
  t.equal(incrementSequence(5, 3), 8);
  t.equal(incrementSequence(SEQUENCE_MAX, 1), 0);
  t.equal(incrementSequence(SEQUENCE_MAX - 1, 3), 1);
  t.ok(inSequence(SEQUENCE_MAX, 0));
  t.ok(inSequence(4, 5));
  t.notOk(inSequence(4, 6));
  t.notOk(inSequence(SEQUENCE_MAX, 1));
  t.end();
});

void t.test('a new producer starts at 0; the next batch follows the last sequence', (t) => {
  const state = new ProducerStateManager();
  t.equal(refusal(() => state.admit([header(7, 0, 3)], NOW)), 'UNKNOWN_PRODUCER_ID', 'an unknown producer must start at sequence 0');
  t.equal(write(state, header(7, 0, 0, 3), 0).kind, 'append');
  t.same(state.entry(7)?.batches, [{ firstSeq: 0, lastSeq: 2, firstOffset: 0, lastOffset: 2, timestampMs: NOW }]);
  t.equal(refusal(() => state.admit([header(7, 0, 4)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a gap');
  t.equal(refusal(() => state.admit([header(7, 0, 1, 2)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'an overlap that is not a retry');
  t.equal(write(state, header(7, 0, 3, 2), 3).kind, 'append');
  t.equal(state.entry(7)?.batches.length, 2);
  t.end();
});

void t.test('a retry of one of the last 5 batches is a duplicate with the original offsets; an older one is out of order', (t) => {
  const state = new ProducerStateManager();
  for (let i = 0; i < 7; i += 1) t.equal(write(state, header(1, 0, i * 2), 100 + i * 2).kind, 'append');
  t.equal(state.entry(1)?.batches.length, PRODUCER_BATCHES_CACHED_MAX);
  const retry = state.admit([header(1, 0, 4)], NOW);
  t.same(retry, { kind: 'duplicate', originals: [{ firstSeq: 4, lastSeq: 5, firstOffset: 104, lastOffset: 105, timestampMs: NOW }] }, 'batch 3 of 7 is still cached');
  t.equal(refusal(() => state.admit([header(1, 0, 2)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'batch 2 of 7 left the window');
  t.equal(state.pendingCount, 0, 'a duplicate reserves nothing');
  t.end();
});

void t.test('epochs: an older one is fenced, a newer one starts at 0 and forgets the old batches', (t) => {
  const state = new ProducerStateManager();
  write(state, header(3, 2, 0), 0);
  write(state, header(3, 2, 2), 2);
  t.equal(refusal(() => state.admit([header(3, 1, 4)], NOW)), 'INVALID_PRODUCER_EPOCH');
  t.equal(refusal(() => state.admit([header(3, 3, 4)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a new epoch must start at 0');
  t.equal(write(state, header(3, 3, 0), 4).kind, 'append');
  t.equal(state.entry(3)?.producerEpoch, 3);
  t.same(state.entry(3)?.batches.map((b) => b.firstOffset), [4]);
  t.equal(refusal(() => state.admit([header(3, 2, 4)], NOW)), 'INVALID_PRODUCER_EPOCH', 'the zombie stays fenced');
  t.equal(refusal(() => state.admit([header(3, 2, 0)], NOW)), 'INVALID_PRODUCER_EPOCH', 'even a retry of its old batch');
  t.end();
});

void t.test('sequences wrap from 2^31-1 to 0 within an epoch', (t) => {
  const state = new ProducerStateManager();
  // A follower learns the producer near the top of the range (a leader would need 2^31 records first).
  state.replay(header(9, 0, SEQUENCE_MAX - 3, 2, NOW, 50));
  t.equal(state.entry(9)?.batches[0]?.lastSeq, SEQUENCE_MAX - 2);
  const wrapping = header(9, 0, SEQUENCE_MAX - 1, 4);
  t.equal(write(state, wrapping, 52).kind, 'append');
  t.equal(state.entry(9)?.batches[1]?.lastSeq, 1, 'the batch ends past the wrap');
  t.equal(write(state, header(9, 0, 2), 56).kind, 'append');
  t.same(state.admit([wrapping], NOW), { kind: 'duplicate', originals: [{ firstSeq: SEQUENCE_MAX - 1, lastSeq: 1, firstOffset: 52, lastOffset: 55, timestampMs: NOW }] });
  t.end();
});

void t.test('producers idle for producerIdExpirationMs are forgotten; batches without a producer id are not checked', (t) => {
  const state = new ProducerStateManager(DAY);
  write(state, header(5, 0, 0), 0);
  write(state, header(6, 0, 0, 2, NOW + 1000), 2, NOW + 1000);
  const early = state.admit([header(5, 0, 2)], NOW + DAY - 1);
  t.equal(early.kind, 'append', 'one ms before expiry it is known');
  state.abandon(pendingOf(early)[0]!);
  t.equal(refusal(() => state.admit([header(5, 0, 2)], NOW + DAY)), 'UNKNOWN_PRODUCER_ID', 'expired on lookup');
  t.equal(state.removeExpired(NOW + DAY), 0, 'producer 5 is gone already; 6 wrote 1 s later');
  t.equal(state.removeExpired(NOW + DAY + 1000), 1);
  t.equal(state.producerCount, 0);
  const plain = readBatchHeader(buildBatch([{ value: Buffer.from('x'), timestampMs: NOW }]), 0);
  t.same(state.admit([plain, plain], NOW), { kind: 'append', pending: [] });
  t.end();
});

void t.test('idleness is measured on the broker clock while running, on batch timestamps when read back from the log', (t) => {
  const state = new ProducerStateManager(DAY);
  const old = NOW - 10 * DAY; // a producer replaying last month's records with their own timestamps
  for (let i = 0; i < 3; i += 1) t.equal(write(state, header(7, 0, i * 2, 2, old), i * 2, NOW + i).kind, 'append', `batch ${i} is accepted`);
  t.equal(state.entry(7)?.lastActiveMs, NOW + 2);
  const follower = new ProducerStateManager(DAY);
  follower.replay(header(7, 0, 0, 2, old, 0), NOW);
  t.equal(follower.removeExpired(NOW + 1), 0, 'a follower times it from its own append');
  const restarted = new ProducerStateManager(DAY);
  restarted.replay(header(7, 0, 0, 2, old, 0));
  t.equal(restarted.removeExpired(NOW), 1, 'read back, the batch timestamp is all there is');
  t.end();
});

void t.test('a pending batch counts for the next admission; a retry of it is a duplicate; an abandoned one is gone', (t) => {
  const state = new ProducerStateManager();
  const first = state.admit([header(2, 0, 0)], NOW);
  t.equal(first.kind, 'append');
  const pendingFirst = pendingOf(first)[0]!;
  const retry = state.admit([header(2, 0, 0)], NOW);
  t.same(retry, { kind: 'duplicate', originals: [pendingFirst] }, 'a retry while the original is written waits for it');
  const second = state.admit([header(2, 0, 2)], NOW);
  t.equal(second.kind, 'append', 'the next batch follows the pending one');
  t.equal(state.pendingCount, 2);
  t.throws(() => { state.complete(pendingOf(second)[0]!, 2, 3, NOW); }, 'completions come in log order');
  state.complete(pendingFirst, 0, 1, NOW);
  state.abandon(pendingOf(second)[0]!);
  t.equal(state.pendingCount, 0);
  t.equal(refusal(() => state.admit([header(2, 0, 4)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'the abandoned batch is not in the log');
  t.end();
});

void t.test('a request is judged whole: later batches follow earlier ones; one refusal or a partial retry reserves nothing', (t) => {
  const state = new ProducerStateManager();
  const both = state.admit([header(4, 0, 0), header(4, 0, 2), header(8, 0, 0)], NOW);
  t.equal(both.kind, 'append');
  t.equal(pendingOf(both).length, 3);
  for (const [i, batch] of pendingOf(both).entries()) state.complete(batch, i * 2, i * 2 + 1, NOW);
  t.equal(refusal(() => state.admit([header(4, 0, 4), header(8, 0, 5)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
  t.equal(state.pendingCount, 0, 'the first batch was not reserved');
  t.equal(refusal(() => state.admit([header(4, 0, 2), header(4, 0, 4)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'half written already');
  t.same(state.admit([header(4, 0, 0), header(4, 0, 2)], NOW), { kind: 'duplicate', originals: state.entry(4)?.batches }, 'a whole retry');
  t.equal(refusal(() => state.admit([header(4, -1 as number, 4)], NOW)), 'INVALID_REQUEST', 'an idempotent batch names its epoch');
  t.end();
});

void t.test('truncation keeps the batches below the cut and says when a producer must be read back', (t) => {
  const state = new ProducerStateManager();
  for (const [seq, offset] of [[0, 0], [2, 2], [4, 4]] as const) state.replay(header(1, 0, seq, 2, NOW, offset));
  state.replay(header(2, 0, 0, 2, NOW, 6));
  t.ok(state.truncateTo(8), 'nothing at or above 8');
  t.equal(state.producerCount, 2);
  t.notOk(state.truncateTo(6), 'producer 2 had batches only above the cut: the log must be read again');
  t.equal(state.entry(2), undefined);
  t.ok(state.truncateTo(4), 'producer 1 keeps two batches');
  t.same(state.entry(1)?.batches.map((b) => b.lastOffset), [1, 3]);
  t.same(state.admit([header(1, 0, 2)], NOW), { kind: 'duplicate', originals: [state.entry(1)?.batches[1]] });
  t.equal(refusal(() => state.admit([header(1, 0, 6)], NOW)), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'the cut batch is expected again');
  t.notOk(state.truncateTo(0), 'producer 1 lost every cached batch');
  t.equal(state.producerCount, 0);
  t.end();
});
