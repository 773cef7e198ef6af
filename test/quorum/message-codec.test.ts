import t from 'tap';
import type { Message } from '../../raft/index.js';
import { decodeMessages, encodeMessages, MESSAGES_PER_REQUEST_MAX } from '../../src/quorum/message-codec.js';

const samples: Message[] = [
  { from: 1, to: 2, term: 3, type: 'preVote', lastIndex: 4, lastTerm: 2 },
  { from: 2, to: 1, term: 3, type: 'voteResponse', granted: true },
  { from: 1, to: 2, term: 3, type: 'append', prevIndex: 4, prevTerm: 2, commit: 4, entries: [{ index: 5, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3]) }, { index: 6, term: 3, type: 'noop', data: new Uint8Array(0) }] },
  { from: 2, to: 1, term: 3, type: 'appendResponse', success: false, index: 4, hintIndex: 2, hintTerm: 1 },
  { from: 1, to: 2, term: 3, type: 'snapshot', meta: { index: 10, term: 3, voters: [1, 2, 3], observers: [] }, offset: 0, chunk: new Uint8Array([9, 9]), done: true },
  { from: 1, to: 2, term: 3, type: 'timeoutNow' },
];

void t.test('messages survive the wire', (t) => {
  const decoded = decodeMessages(JSON.parse(encodeMessages(samples)));
  t.same(decoded, samples);
  t.end();
});

void t.test('malformed bodies are INVALID_REQUEST', (t) => {
  const bad: unknown[] = [
    {},
    [null],
    [{ from: 1, to: 2, term: -1, type: 'timeoutNow' }],
    [{ from: 1, to: 2, term: 1, type: 'nonsense' }],
    [{ from: 1, to: 2, term: 1, type: 'vote', lastIndex: 1, lastTerm: 1 }],
    [{ from: 1, to: 2, term: 1, type: 'append', prevIndex: 1, prevTerm: 1, commit: 1, entries: 'x' }],
    [{ from: 1, to: 2, term: 1, type: 'append', prevIndex: 1, prevTerm: 1, commit: 1, entries: [{ index: 1, term: 1, type: 'odd', data: '' }] }],
    [{ from: 1, to: 2, term: 1, type: 'snapshot', offset: 0, done: true, chunk: '', meta: { index: 1 } }],
    Array.from({ length: MESSAGES_PER_REQUEST_MAX + 1 }, () => ({ from: 1, to: 2, term: 1, type: 'timeoutNow' })),
  ];
  for (const body of bad) t.throws(() => decodeMessages(body), { code: 'INVALID_REQUEST' });
  t.end();
});
