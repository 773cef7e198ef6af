// The server-side assignors of a consumer group (KIP-848: the coordinator computes the
// target assignment; members only reconcile towards it). Both are pure and deterministic in
// their inputs, so every coordinator, after a failover too, computes the same target.
//
// - range: per topic, the subscribed members in id order each get a contiguous run of
//   partitions; the first `partitions % members` get one extra (Kafka's RangeAssignor).
// - roundrobin: all subscribed (topic, partition) pairs in order, dealt to the members
//   subscribed to that topic in turn (Kafka's RoundRobinAssignor).

export type AssignorName = 'range' | 'roundrobin';
export const assignorNames: readonly AssignorName[] = ['range', 'roundrobin'];

export interface AssignorMember {
  readonly memberId: string;
  readonly subscribedTopics: readonly string[];
}

/** Partitions by topic, for one member. */
export type TopicPartitions = Map<string, number[]>;

/**
 * The target assignment: every member gets an entry (possibly empty); each partition of a
 * subscribed topic (by `partitionCounts`) goes to exactly one member subscribed to it.
 * Topics missing from `partitionCounts` (not created yet, or deleted) are left out.
 */
export function assign(name: AssignorName, members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartitions> {
  const sorted = [...members].sort((a, b) => compare(a.memberId, b.memberId));
  const target = new Map<string, TopicPartitions>(sorted.map((member) => [member.memberId, new Map()]));
  const topics = [...new Set(sorted.flatMap((member) => member.subscribedTopics))].filter((topic) => partitionCounts.has(topic)).sort(compare);
  const give = (memberId: string, topic: string, partition: number): void => {
    const mine = target.get(memberId);
    if (mine === undefined) return;
    const list = mine.get(topic) ?? [];
    list.push(partition);
    mine.set(topic, list);
  };
  if (name === 'range') {
    for (const topic of topics) {
      const subscribers = sorted.filter((member) => member.subscribedTopics.includes(topic));
      const count = partitionCounts.get(topic) ?? 0;
      const each = Math.floor(count / subscribers.length);
      const extra = count % subscribers.length;
      let next = 0;
      subscribers.forEach((member, i) => {
        const share = each + (i < extra ? 1 : 0);
        for (let p = next; p < next + share; p += 1) give(member.memberId, topic, p);
        next += share;
      });
    }
    return target;
  }
  let turn = 0;
  for (const topic of topics) {
    const count = partitionCounts.get(topic) ?? 0;
    for (let p = 0; p < count; p += 1) {
      // The next member in the rotation that is subscribed to this topic.
      for (let tried = 0; tried < sorted.length; tried += 1) {
        const member = sorted[turn % sorted.length];
        turn += 1;
        if (member?.subscribedTopics.includes(topic) === true) {
          give(member.memberId, topic, p);
          break;
        }
      }
    }
  }
  return target;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
