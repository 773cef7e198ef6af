// driftwood's client library: Producer, Consumer and Admin over the brokers' HTTP/2 API.
export { Producer, type Acks, type HeaderValue, type ProducerMessage, type ProducerMetrics, type ProducerOptions, type RecordMetadata } from './producer.js';
export { Consumer, type Assignor, type CommitOffset, type CommittedOffset, type ConsumerOptions, type ConsumerRecord, type OffsetReset, type TopicPartition } from './consumer.js';
export {
  Admin,
  type AdminOptions,
  type ClusterDescription,
  type GroupDescription,
  type GroupListing,
  type NewTopic,
  type PartitionDescription,
  type ResetGroupOffsets,
  type ResetGroupOffsetsResult,
  type TopicDescription,
} from './admin.js';
export type { ClientOptions } from './options.js';
export type { BrokerMetadata, PartitionMetadata } from './metadata.js';
export { DriftwoodError, errorCodes, isDriftwoodError, type ErrorCode } from '../../storage/errors.js';
export type { Header } from '../../storage/record-batch.js';
export { partitionForKey, murmur2 } from '../partitioner.js';
