// Kafka's consumer protocol (ConsumerProtocolAssignment.json, versions 0-3): how a Kafka
// consumer group's leader encodes each member's partitions in the SyncGroup assignment the
// coordinator keeps opaque. Read only to show a Kafka group's members and their partitions
// over HTTP; the coordinator never acts on it.
import type { TopicPartitionList } from './group.js';

/**
 * The partitions in a consumer-protocol assignment, or null when the bytes are not one (a
 * client with its own protocol type, or a short or malformed assignment): nothing is assumed.
 */
export function consumerAssignment(bytes: Buffer): TopicPartitionList[] | null {
  let position = 0;
  const need = (count: number): boolean => position + count <= bytes.length;
  const int16 = (): number | null => (need(2) ? ((position += 2), bytes.readInt16BE(position - 2)) : null);
  const int32 = (): number | null => (need(4) ? ((position += 4), bytes.readInt32BE(position - 4)) : null);
  const version = int16();
  if (version === null || version < 0) return null;
  const topics = int32();
  if (topics === null || topics < 0 || topics > bytes.length) return null;
  const list: TopicPartitionList[] = [];
  for (let i = 0; i < topics; i += 1) {
    const nameBytes = int16();
    if (nameBytes === null || nameBytes < 0 || !need(nameBytes)) return null;
    const topic = bytes.toString('utf8', position, position + nameBytes);
    position += nameBytes;
    const count = int32();
    if (count === null || count < 0 || !need(count * 4)) return null;
    const partitions: number[] = [];
    for (let j = 0; j < count; j += 1) partitions.push(bytes.readInt32BE(position + j * 4));
    position += count * 4;
    list.push({ topic, partitions: partitions.sort((a, b) => a - b) });
  }
  return list.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
}
