// Majority arithmetic over the static voter set. Observers never appear here: they neither
// vote nor count towards committing an entry or confirming a leader.
import assert from 'node:assert/strict';
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** The smallest number of voters that forms a majority. */
export function quorumSize(voterCount: number): number {
  assert(voterCount > 0);
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters hold (the quorum-th largest match index): the
 * highest index that may be committed by counting, if its term allows (Raft §5.4.2).
 */
export function quorumIndex(matches: readonly number[]): number {
  const sorted = [...matches].sort((a, b) => b - a);
  const index = sorted[quorumSize(matches.length) - 1];
  assert(index !== undefined);
  return index;
}

/** Whether the votes recorded so far win, lose, or leave the election open. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    if (vote === false) rejected++;
  }
  const needed = quorumSize(voters.length);
  if (granted >= needed) return 'won';
  if (voters.length - rejected < needed) return 'lost';
  return 'pending';
}
