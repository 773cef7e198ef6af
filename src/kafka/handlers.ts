// The Kafka-protocol API handlers: each decoded request answered from the broker's state,
// then encoded. Only the APIs listed in `handlers` are advertised by ApiVersions, so a client
// never calls one that is described in the codec but not served yet.
//
// Served so far: ApiVersions and Metadata (enough for `kcat -L` and KafkaJS's admin
// metadata calls). Produce, Fetch, the group and admin APIs are not served yet (issue 11).
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { MetadataImage, PartitionState } from '../controller/image.js';
import { offlineReplicasOf } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { OFFSETS_TOPIC } from '../group/group-records.js';
import type { ConnectionInfo, KafkaDispatcher } from './dispatcher.js';
import { readRequestHead } from './dispatcher.js';
import { API_VERSIONS_KEY, apiVersionsTable, decodeRequest, encodeResponse, type ApiVersionRange, type RequestHeader } from './protocol/apis.js';
import { kafkaErrorFor, kafkaErrors } from './protocol/kafka-errors.js';
import type { Struct } from './protocol/spec.js';

const METADATA_KEY = 3;

/** What the handlers read of the broker they run in. */
export interface KafkaBroker {
  readonly image: MetadataImage;
  /** The active controller's broker id, or 0 while there is none. */
  readonly controllerId: () => number;
}

type Handler = (body: Struct, header: RequestHeader, broker: KafkaBroker) => Struct;

const handlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [API_VERSIONS_KEY, () => ({ errorCode: 0, apiKeys: served().map((range) => ({ ...range })), throttleTimeMs: 0 })],
  [METADATA_KEY, metadata],
]);

/** The API versions this broker answers: the codec's ranges for the APIs with a handler. */
export function served(): ApiVersionRange[] {
  return apiVersionsTable().filter((range) => handlers.has(range.apiKey));
}

export class KafkaHandlers implements KafkaDispatcher {
  constructor(private readonly broker: KafkaBroker) {}

  handle(frame: Buffer, _connection: ConnectionInfo): Promise<Buffer | null> {
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
    return Promise.resolve(encodeResponse(decoded.header.apiKey, decoded.header.apiVersion, decoded.header.correlationId, handler(decoded.body, decoded.header, this.broker)));
  }
}

/** Kafka's topic id: our 22-character base64url id is its 16 bytes. */
export function topicUuid(topicId: string): Buffer {
  const bytes = Buffer.alloc(16);
  Buffer.from(topicId, 'base64url').copy(bytes, 0, 0, 16);
  return bytes;
}

function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/**
 * Metadata: every live broker with a Kafka listener, the controller, and the topics asked
 * for (all when the list is null, or empty in v0), each partition with its leader, leader
 * epoch, replicas, ISR and offline replicas. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION:
 * topics are not created on a metadata request.
 */
function metadata(body: Struct, header: RequestHeader, broker: KafkaBroker): Struct {
  const image = broker.image;
  const brokers = image.brokers().filter((b) => !b.fenced && b.kafkaAddress !== undefined).map((b) => ({ nodeId: b.brokerId, ...hostPort(b.kafkaAddress ?? ''), rack: null }));
  const listed = new Set(brokers.map((b) => b.nodeId));
  const asked = body.topics as ReadonlyArray<{ name: string | null }> | null;
  const all = asked === null || (header.apiVersion === 0 && asked.length === 0);
  const names = all ? image.topics().map((topic) => topic.name) : asked.map((topic) => topic.name ?? '');
  const topics = names.map((name) => {
    const topic = image.topic(name);
    if (topic === undefined) {
      return { errorCode: kafkaErrors[kafkaErrorFor.UNKNOWN_TOPIC_OR_PARTITION], name, topicId: Buffer.alloc(16), isInternal: false, partitions: [] };
    }
    return {
      errorCode: 0,
      name: topic.name,
      topicId: topicUuid(topic.topicId),
      isInternal: topic.name === OFFSETS_TOPIC,
      partitions: (image.partitions(topic.topicId) ?? []).map((p) => partitionMetadata(p, listed)),
    };
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
