// The Kafka-protocol API handlers: each decoded request answered from the broker's state,
// then encoded. Only the APIs listed in `handlers` are advertised by ApiVersions, so a client
// never calls one that is described in the codec but not served yet.
//
// Served: ApiVersions, Metadata, Produce, InitProducerId, ListOffsets, Fetch, the group
// APIs of group-handlers.ts (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups), and the topic admin APIs of
// admin-handlers.ts (CreateTopics, DeleteTopics, DescribeConfigs).
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { MetadataImage, PartitionState, TopicState } from '../controller/image.js';
import { offlineReplicasOf } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { OFFSETS_TOPIC } from '../group/group-records.js';
import { adminHandlers, missingTopicError, type KafkaAdminBroker } from './admin-handlers.js';
import type { ConnectionInfo, KafkaDispatcher } from './dispatcher.js';
import { readRequestHead } from './dispatcher.js';
import { API_VERSIONS_KEY, apiVersionsTable, decodeRequest, encodeResponse, type ApiVersionRange, type RequestHeader } from './protocol/apis.js';
import { kafkaErrorNumber, kafkaErrors } from './protocol/kafka-errors.js';
import { groupHandlers } from './group-handlers.js';
import { hostPort } from './host-port.js';
import { topicByUuid, topicUuid } from './topic-uuid.js';
import type { GroupCoordinator } from '../group/coordinator.js';
import type { AppendResult, ReadResult } from '../../storage/partition-log.js';
import type { Acks } from '../replica/partition.js';
import type { Struct } from './protocol/spec.js';

const PRODUCE_KEY = 0;
const FETCH_KEY = 1;
const LIST_OFFSETS_KEY = 2;
const METADATA_KEY = 3;
/** ListOffsets' special timestamps. */
const LATEST_TIMESTAMP = -1n;
const EARLIEST_TIMESTAMP = -2n;
/** The most a fetch waits, whatever it asks (the HTTP consume route's bound). */
const FETCH_WAIT_MS_MAX = 30_000;
const INIT_PRODUCER_ID_KEY = 22;
/** The RecordBatch magic byte's position and the only format served (v2). */
const MAGIC_OFFSET = 16;
const MAGIC_V2 = 2;

/** What the handlers use of the broker they run in. */
export interface KafkaBroker extends KafkaAdminBroker {
  readonly image: MetadataImage;
  /** The active controller's broker id, or 0 while there is none. */
  readonly controllerId: () => number;
  /** A produce to a partition this broker leads (as the HTTP produce route does it). */
  readonly produce: (topic: string, partition: number, batches: Buffer, acks: Acks, timeoutMs: number) => Promise<AppendResult>;
  /** A new idempotent producer's id and epoch (KIP-730's blocks). */
  readonly initProducerId: () => Promise<{ producerId: number; producerEpoch: number }>;
  /** A consumer read of a partition this broker leads: batches below the high watermark. */
  readonly consume: (topic: string, partition: number, offset: number, options: { bytesMax: number; minBytes: number; maxWaitMs: number; currentLeaderEpoch?: number }) => Promise<ReadResult & { highWatermark: number; leaderEpoch: number }>;
  /** A fetch's wait: until any of these partitions has records past its offset, or waitMs. */
  readonly waitForAny: (asks: ReadonlyArray<{ topic: string; partition: number; offset: number }>, waitMs: number) => Promise<void>;
  /** ListOffsets on a partition this broker leads. */
  readonly offsetForTimestamp: (topic: string, partition: number, timestamp: 'earliest' | 'latest' | number) => Promise<{ offset: number; timestampMs: number | null; leaderEpoch: number }>;
  /** The group coordinator (Kafka's classic groups and the offsets HTTP groups share). */
  readonly groups: Pick<GroupCoordinator, 'coordinatorFor' | 'joinClassic' | 'syncClassic' | 'heartbeatClassic' | 'leaveClassic' | 'commitClassic' | 'fetchOffsets' | 'describeKafka' | 'kafkaGroups'>;
}

/** An answer, or null for none (Produce with acks=0). */
type Handler = (body: Struct, header: RequestHeader, broker: KafkaBroker, connection: ConnectionInfo) => Promise<Struct | null>;

const handlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [API_VERSIONS_KEY, () => Promise.resolve({ errorCode: 0, apiKeys: served().map((range) => ({ ...range })), throttleTimeMs: 0 })],
  [METADATA_KEY, (body, header, broker) => Promise.resolve(metadata(body, header, broker))],
  [PRODUCE_KEY, produce],
  [INIT_PRODUCER_ID_KEY, initProducerId],
  [LIST_OFFSETS_KEY, listOffsets],
  [FETCH_KEY, fetch],
  ...groupHandlers,
  ...adminHandlers,
]);

/** The API versions this broker answers: the codec's ranges for the APIs with a handler. */
export function served(): ApiVersionRange[] {
  return apiVersionsTable().filter((range) => handlers.has(range.apiKey));
}

export class KafkaHandlers implements KafkaDispatcher {
  constructor(private readonly broker: KafkaBroker) {}

  handle(frame: Buffer, connection: ConnectionInfo): Promise<Buffer | null> {
    const head = readRequestHead(frame);
    let decoded;
    try {
      decoded = decodeRequest(frame);
    } catch (error) {
      // KIP-511: an ApiVersions in a version we do not know gets the v0 answer with our ranges.
      if (isDriftwoodError(error, 'UNSUPPORTED_VERSION') && head.apiKey === API_VERSIONS_KEY) {
        return Promise.resolve(encodeResponse(API_VERSIONS_KEY, 0, head.correlationId, { errorCode: kafkaErrors.UNSUPPORTED_VERSION, apiKeys: served().map((range) => ({ ...range })) }));
      }
      // Anything else unreadable has no answer the client could match: close (as Kafka does).
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const handler = handlers.get(decoded.header.apiKey);
    if (handler === undefined) {
      return Promise.reject(new DriftwoodError('UNSUPPORTED_VERSION', `API ${decoded.header.apiKey} is not served yet (ApiVersions does not advertise it)`));
    }
    const { header } = decoded;
    return handler(decoded.body, header, this.broker, connection).then((answer) => (answer === null ? null : encodeResponse(header.apiKey, header.apiVersion, header.correlationId, answer)));
  }
}

/**
 * Metadata: every live broker with a Kafka listener, the controller, and the topics asked
 * for (all when the list is null, or empty in v0), each partition with its leader, leader
 * epoch, replicas, ISR and offline replicas. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION,
 * unless the broker auto-creates topics (missingTopicError).
 */
function metadata(body: Struct, header: RequestHeader, broker: KafkaBroker): Struct {
  const image = broker.image;
  const brokers = image.brokers().filter((b) => !b.fenced && b.kafkaAddress !== undefined).map((b) => ({ nodeId: b.brokerId, ...hostPort(b.kafkaAddress ?? ''), rack: null }));
  const listed = new Set(brokers.map((b) => b.nodeId));
  type Ask = { readonly name: string | null; readonly topicId?: Buffer };
  const asked = body.topics as readonly Ask[] | null;
  const all = asked === null || (header.apiVersion === 0 && asked.length === 0);
  const wanted: readonly Ask[] = all ? image.topics().map((topic) => ({ name: topic.name })) : asked;
  const topics = wanted.map((ask) => {
    // v10+ may ask by topic id alone (the name null).
    if (ask.name === null && ask.topicId !== undefined) {
      const byId = topicByUuid(image, ask.topicId);
      if (byId === undefined) return { errorCode: kafkaErrors.UNKNOWN_TOPIC_ID, name: header.apiVersion >= 12 ? null : '', topicId: ask.topicId, isInternal: false, partitions: [] };
      return topicMetadata(byId, image, listed);
    }
    const name = ask.name ?? '';
    const topic = image.topic(name);
    if (topic === undefined) {
      return { errorCode: missingTopicError(name, body, header, broker), name, topicId: Buffer.alloc(16), isInternal: false, partitions: [] };
    }
    return topicMetadata(topic, image, listed);
  });
  const controller = broker.controllerId();
  return {
    throttleTimeMs: 0,
    brokers,
    clusterId: image.clusterId ?? null,
    controllerId: listed.has(controller) ? controller : -1,
    topics,
  };
}

function topicMetadata(topic: TopicState, image: MetadataImage, listed: ReadonlySet<number>): Struct {
  return {
    errorCode: 0,
    name: topic.name,
    topicId: topicUuid(topic.topicId),
    isInternal: topic.name === OFFSETS_TOPIC,
    partitions: (image.partitions(topic.topicId) ?? []).map((p) => partitionMetadata(p, listed)),
  };
}

function partitionMetadata(p: PartitionState, listed: ReadonlySet<number>): Struct {
  // A leader without a Kafka listener (or fenced) cannot be reached by a Kafka client.
  const leader = p.leader !== NO_LEADER && listed.has(p.leader) ? p.leader : -1;
  return {
    errorCode: leader === -1 ? kafkaErrors.LEADER_NOT_AVAILABLE : 0,
    partitionIndex: p.partition,
    leaderId: leader,
    leaderEpoch: p.leaderEpoch,
    replicaNodes: [...p.replicas],
    isrNodes: [...p.isr],
    offlineReplicas: [...offlineReplicasOf(p)],
  };
}

/**
 * Produce: each partition's batches appended as the HTTP produce route appends them (the
 * same acks, idempotence and errors), all partitions at once; each answered with its base
 * offset or its error. acks=0 gets no answer. Only RecordBatch v2 is taken
 * (UNSUPPORTED_FOR_MESSAGE_FORMAT otherwise); transactions are not supported.
 */
async function produce(body: Struct, header: RequestHeader, broker: KafkaBroker): Promise<Struct | null> {
  const acks = body.acks as number;
  const timeoutMs = body.timeoutMs as number;
  const transactional = body.transactionalId !== null && body.transactionalId !== undefined;
  const topics = body.topicData as ReadonlyArray<{ name: string; partitionData: ReadonlyArray<{ index: number; records: Buffer | null }> }>;
  const responses = await Promise.all(topics.map(async (topic) => ({
    name: topic.name,
    partitionResponses: await Promise.all(topic.partitionData.map(async ({ index, records }) => {
      const refused = (code: number, message: string): Struct => ({ index, errorCode: code, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, recordErrors: [], errorMessage: header.apiVersion >= 8 ? message : null });
      if (acks !== 0 && acks !== 1 && acks !== -1) return refused(kafkaErrors.INVALID_REQUIRED_ACKS, `acks must be 0, 1 or -1, got ${acks}`);
      if (transactional) return refused(kafkaErrors.INVALID_REQUEST, 'transactions are not supported');
      if (records === null || records.length <= MAGIC_OFFSET) return refused(kafkaErrors.CORRUPT_MESSAGE, 'no record batch');
      if (records[MAGIC_OFFSET] !== MAGIC_V2) return refused(kafkaErrors.UNSUPPORTED_FOR_MESSAGE_FORMAT, `record batch magic ${records[MAGIC_OFFSET]}; only v2 batches are taken`);
      try {
        const appended = await broker.produce(topic.name, index, records, acks, timeoutMs);
        return { index, errorCode: 0, baseOffset: BigInt(appended.baseOffset), logAppendTimeMs: BigInt(appended.logAppendTimeMs), logStartOffset: -1n, recordErrors: [], errorMessage: null };
      } catch (error) {
        return refused(kafkaErrorNumber(error), error instanceof Error ? error.message : String(error));
      }
    })),
  })));
  return acks === 0 ? null : { responses, throttleTimeMs: 0 };
}

/** InitProducerId without a transactional id: a fresh producer id at epoch 0 (transactions are not supported). */
async function initProducerId(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  if (body.transactionalId !== null) return { throttleTimeMs: 0, errorCode: kafkaErrors.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 };
  try {
    const { producerId, producerEpoch } = await broker.initProducerId();
    return { throttleTimeMs: 0, errorCode: 0, producerId: BigInt(producerId), producerEpoch };
  } catch (error) {
    return { throttleTimeMs: 0, errorCode: kafkaErrorNumber(error), producerId: -1n, producerEpoch: -1 };
  }
}

/** ListOffsets: earliest (-2), latest (-1: the high watermark), or the first offset at or after a timestamp. */
async function listOffsets(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const topics = body.topics as ReadonlyArray<{ name: string; partitions: ReadonlyArray<{ partitionIndex: number; timestamp: bigint }> }>;
  return {
    throttleTimeMs: 0,
    topics: await Promise.all(topics.map(async (topic) => ({
      name: topic.name,
      partitions: await Promise.all(topic.partitions.map(async ({ partitionIndex, timestamp }) => {
        try {
          const asked = timestamp === LATEST_TIMESTAMP ? 'latest' : timestamp === EARLIEST_TIMESTAMP ? 'earliest' : timestamp >= 0n ? Number(timestamp) : null;
          if (asked === null) return { partitionIndex, errorCode: kafkaErrors.INVALID_REQUEST, timestamp: -1n, offset: -1n, leaderEpoch: -1 };
          const found = await broker.offsetForTimestamp(topic.name, partitionIndex, asked);
          return { partitionIndex, errorCode: 0, timestamp: BigInt(found.timestampMs ?? -1), offset: BigInt(found.offset), leaderEpoch: found.leaderEpoch };
        } catch (error) {
          return { partitionIndex, errorCode: kafkaErrorNumber(error), timestamp: -1n, offset: -1n, leaderEpoch: -1 };
        }
      })),
    }))),
  };
}

interface FetchPartitionAsk { readonly partition: number; readonly fetchOffset: bigint; readonly partitionMaxBytes: number; readonly currentLeaderEpoch?: number }

/**
 * Fetch without sessions (sessionId 0 answers every fetch in full, as Kafka does when it
 * makes no session): committed batches from each partition's offset, each within its
 * partitionMaxBytes and all within maxBytes (the first batch always fits, as in Kafka). When
 * fewer than minBytes are there, it waits up to maxWaitMs for any partition to get more, then
 * reads again. read_committed reads the same: there are no transactions.
 */
async function fetch(body: Struct, _header: RequestHeader, broker: KafkaBroker): Promise<Struct> {
  const topics = body.topics as unknown as ReadonlyArray<{ topic: string; partitions: readonly FetchPartitionAsk[] }>;
  const maxWaitMs = Math.min(Math.max(body.maxWaitMs as number, 0), FETCH_WAIT_MS_MAX);
  const minBytes = Math.max(body.minBytes as number, 0);
  const read = async (): Promise<{ bytes: number; responses: Struct[] }> => {
    let budget = Math.max(body.maxBytes as number, 1);
    let total = 0;
    const responses: Struct[] = [];
    for (const topic of topics) {
      const partitions: Struct[] = [];
      for (const ask of topic.partitions) {
        const answer = await fetchPartition(broker, topic.topic, ask, total === 0 ? Math.max(1, Math.min(ask.partitionMaxBytes, budget)) : Math.min(ask.partitionMaxBytes, budget));
        const length = (answer.records as Buffer | null)?.length ?? 0;
        budget = Math.max(0, budget - length);
        total += length;
        partitions.push(answer);
      }
      responses.push({ topic: topic.topic, partitions });
    }
    return { bytes: total, responses };
  };
  let first = await read();
  if (first.bytes < minBytes && maxWaitMs > 0) {
    // Wait for any asked partition to pass its offset (or the time to run out), then read again.
    await broker.waitForAny(topics.flatMap((topic) => topic.partitions.map((ask) => ({ topic: topic.topic, partition: ask.partition, offset: Number(ask.fetchOffset) }))), maxWaitMs);
    first = await read();
  }
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: first.responses };
}

async function fetchPartition(broker: KafkaBroker, topic: string, ask: FetchPartitionAsk, bytesMax: number): Promise<Struct> {
  const base = { partitionIndex: ask.partition, abortedTransactions: null, preferredReadReplica: -1 };
  try {
    const epoch = ask.currentLeaderEpoch !== undefined && ask.currentLeaderEpoch >= 0 ? { currentLeaderEpoch: ask.currentLeaderEpoch } : {};
    const read = bytesMax <= 0
      ? await broker.consume(topic, ask.partition, Number(ask.fetchOffset), { bytesMax: 1, minBytes: 0, maxWaitMs: 0, ...epoch }).then((r) => ({ ...r, bytes: Buffer.alloc(0) }))
      : await broker.consume(topic, ask.partition, Number(ask.fetchOffset), { bytesMax, minBytes: 0, maxWaitMs: 0, ...epoch });
    return { ...base, errorCode: 0, highWatermark: BigInt(read.highWatermark), lastStableOffset: BigInt(read.highWatermark), logStartOffset: BigInt(read.logStartOffset), records: read.bytes };
  } catch (error) {
    // An offset outside the log carries the log's bounds, so the client can reset to them.
    const bounds = isDriftwoodError(error, 'OFFSET_OUT_OF_RANGE') ? error.hints : {};
    const highWatermark = typeof bounds.highWatermark === 'number' ? BigInt(bounds.highWatermark) : -1n;
    const logStartOffset = typeof bounds.logStartOffset === 'number' ? BigInt(bounds.logStartOffset) : -1n;
    return { ...base, errorCode: kafkaErrorNumber(error), highWatermark, lastStableOffset: highWatermark, logStartOffset, records: null };
  }
}
