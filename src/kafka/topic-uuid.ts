// Kafka's topic ids (16-byte UUIDs on the wire) and driftwood's: our 22-character base64url
// topic id is the same 16 bytes.
import type { MetadataImage, TopicState } from '../controller/image.js';

export function topicUuid(topicId: string): Buffer {
  const bytes = Buffer.alloc(16);
  Buffer.from(topicId, 'base64url').copy(bytes, 0, 0, 16);
  return bytes;
}

/** The topic with this Kafka topic id, if any. */
export function topicByUuid(image: MetadataImage, uuid: Buffer): TopicState | undefined {
  return image.topics().find((topic) => topicUuid(topic.topicId).equals(uuid));
}
