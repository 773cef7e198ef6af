// Replication by hand in unit tests: one follower fetch round between two Partitions.
import type { FollowerFetchAnswer, Partition } from '../../src/replica/partition.js';

/** One follower fetch round: ask the leader, apply the answer to the follower. */
export async function fetchOnce(leader: Partition, follower: Partition, followerId: number): Promise<FollowerFetchAnswer> {
  const answer = await leader.readForFollower({ followerId, leaderEpoch: leader.state.leaderEpoch, fetchOffset: follower.log.logEndOffset, lastFetchedEpoch: follower.lastFetchedEpoch, bytesMax: 1 << 20 });
  if (answer.kind === 'records') await follower.appendFromLeader(answer.bytes, answer.highWatermark);
  else if (answer.kind === 'diverging') await follower.truncateToDivergence(answer.epoch, answer.endOffset);
  else await follower.startOver(answer.logStartOffset, answer.highWatermark);
  return answer;
}
