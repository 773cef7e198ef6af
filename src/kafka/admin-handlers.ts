// Kafka's topic admin APIs on the Kafka listener: CreateTopics (19), DeleteTopics (20) and
// DescribeConfigs (32), and the auto-creation a Metadata request may ask for. Changes go to
// the controller by the same path as the HTTP admin routes (forwarded when this broker is not
// the controller, so a client that sends them elsewhere is answered too); every answer is per
// topic or per resource, with Kafka's error numbers.
import { topicByUuid, topicUuid } from './topic-uuid.js';
import assert from 'node:assert/strict';
import type { Clock } from '../../storage/clock.js';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { createTopic as decideCreation, type CreateTopicRequest } from '../controller/commands.js';
import type { MetadataImage, TopicState } from '../controller/image.js';
import { NO_LEADER } from '../controller/records.js';
import { validateTopicConfigs, validateTopicName } from '../controller/topic-config.js';
import { OFFSETS_TOPIC } from '../group/group-records.js';
import { brokerConfigEntries, configSources, DEFAULT_PARTITIONS, DEFAULT_REPLICATION_FACTOR_MAX, topicConfigEntries, type BrokerSettings, type ConfigEntry } from './config-entries.js';
import type { RequestHeader } from './protocol/apis.js';
import { kafkaErrorNumber, kafkaErrors } from './protocol/kafka-errors.js';
import type { Struct } from './protocol/spec.js';

export const CREATE_TOPICS_KEY = 19;
export const DELETE_TOPICS_KEY = 20;
export const DESCRIBE_CONFIGS_KEY = 32;

/** DescribeConfigs resource types (Kafka's ConfigResource.Type). */
const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
/** Kafka's "use the broker default" for numPartitions and replicationFactor (KIP-464). */
const BROKER_DEFAULT = -1;
/** A validate-only decision runs the controller's checks with an id no topic has. */
const VALIDATE_ONLY_TOPIC_ID = 'validate-only';
const ZERO_UUID = Buffer.alloc(16);

/** What the admin handlers use of the broker they run in. */
export interface KafkaAdminBroker {
  readonly image: MetadataImage;
  readonly clock: Clock;
  /** This broker's id: a DescribeConfigs broker resource names it. */
  readonly brokerId: number;
  /** A topic creation through the controller (as POST /v1/topics sends it); resolves once the controller applied it. */
  readonly createTopic: (request: CreateTopicRequest) => Promise<TopicState>;
  /** A topic deletion through the controller (as DELETE /v1/topics/:name sends it). */
  readonly deleteTopic: (name: string) => Promise<void>;
  /** The broker's startup settings, for DescribeConfigs. */
  readonly brokerSettings: BrokerSettings;
  /**
   * Kafka's auto.create.topics.enable: starts creating a topic with the broker defaults
   * (without waiting, at most one creation per name at a time); null when the broker runs
   * without --kafka-auto-create-topics.
   */
  readonly autoCreateTopic: ((name: string) => void) | null;
}

type AdminHandler = (body: Struct, header: RequestHeader, broker: KafkaAdminBroker) => Promise<Struct>;

/** Kafka's number and text for a failure. */
function failure(error: unknown): { errorCode: number; errorMessage: string } {
  return { errorCode: kafkaErrorNumber(error), errorMessage: error instanceof Error ? error.message : String(error) };
}

/** The replication factor a topic gets when none is asked: min(3, live brokers), as over HTTP. */
export function defaultReplicationFactor(image: MetadataImage): number {
  return Math.min(DEFAULT_REPLICATION_FACTOR_MAX, image.unfencedBrokerIds().length || 1);
}

/**
 * Resolves true once `done()` holds for the image (checked at every applied entry), or with
 * what it says when `timeoutMs` runs out (at once for 0 or less).
 */
function waitForImage(broker: KafkaAdminBroker, done: () => boolean, timeoutMs: number): Promise<boolean> {
  if (done() || timeoutMs <= 0) return Promise.resolve(done());
  return new Promise((resolve) => {
    const finish = (): void => {
      timer.cancel();
      unsubscribe();
      resolve(done());
    };
    const unsubscribe = broker.image.onChange(() => { if (done()) finish(); });
    const timer = broker.clock.setTimer(timeoutMs, finish);
  });
}

/** Every partition of the topic has a leader in this broker's image: what Kafka's CreateTopics waits for. */
function leadersElected(image: MetadataImage, topicId: string): boolean {
  const partitions = image.partitions(topicId);
  return partitions !== undefined && partitions.length > 0 && partitions.every((p) => p.leader !== NO_LEADER);
}

/** Names asked for more than once in one request: Kafka answers each of them INVALID_REQUEST. */
function duplicated(names: ReadonlyArray<string | null>): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const name of names) {
    if (name === null) continue;
    if (seen.has(name)) twice.add(name);
    seen.add(name);
  }
  return twice;
}

// ---------------------------------------------------------------- CreateTopics

interface CreatableTopic {
  readonly name: string;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly assignments: readonly unknown[];
  readonly configs: ReadonlyArray<{ readonly name: string; readonly value: string | null }>;
}

/** The controller's request for a CreatableTopic, with Kafka's -1 defaults filled in; what the protocol allows but driftwood does not is refused. */
function creationRequest(topic: CreatableTopic, image: MetadataImage): CreateTopicRequest {
  if (topic.assignments.length > 0) throw new DriftwoodError('INVALID_REQUEST', 'manual replica assignments are not supported: give numPartitions and replicationFactor (or -1 for the defaults)');
  if (topic.name === OFFSETS_TOPIC) throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `${OFFSETS_TOPIC} is internal: the group coordinators create and write it`);
  const configs: Record<string, string> = {};
  for (const { name, value } of topic.configs) {
    // Kafka's rule: a creation has no previous value a null could mean to keep.
    if (value === null) throw new DriftwoodError('INVALID_CONFIG', `null value for config ${name}`);
    if (Object.hasOwn(configs, name)) throw new DriftwoodError('INVALID_CONFIG', `config ${name} given twice`);
    configs[name] = value;
  }
  return {
    name: topic.name,
    partitions: topic.numPartitions === BROKER_DEFAULT ? DEFAULT_PARTITIONS : topic.numPartitions,
    replicationFactor: topic.replicationFactor === BROKER_DEFAULT ? defaultReplicationFactor(image) : topic.replicationFactor,
    configs,
  };
}

/** A CreatableTopicResult: v5+ say what the topic has (or would have, validateOnly). */
function createdResult(name: string, topic: TopicState, request: CreateTopicRequest, failed?: { errorCode: number; errorMessage: string }): Struct {
  return {
    name,
    topicId: failed === undefined && topic.topicId !== VALIDATE_ONLY_TOPIC_ID ? topicUuid(topic.topicId) : ZERO_UUID,
    errorCode: failed?.errorCode ?? 0,
    errorMessage: failed?.errorMessage ?? null,
    numPartitions: request.partitions,
    replicationFactor: request.replicationFactor,
    configs: topicConfigEntries(topic).map((entry) => ({ name: entry.name, value: entry.value, readOnly: entry.readOnly, configSource: entry.source, isSensitive: false })),
  };
}

function refusedResult(name: string, error: unknown): Struct {
  return { name, topicId: ZERO_UUID, ...failure(error), numPartitions: -1, replicationFactor: -1, configs: [] };
}

async function createOne(topic: CreatableTopic, options: { validateOnly: boolean; timeoutMs: number; duplicate: boolean }, broker: KafkaAdminBroker): Promise<Struct> {
  try {
    if (options.duplicate) throw new DriftwoodError('INVALID_REQUEST', `topic ${topic.name} is asked for more than once`);
    const request = creationRequest(topic, broker.image);
    // The controller's own decision against this broker's image: the right error for each
    // topic before anything is sent, and the whole of validateOnly. The controller decides
    // again against its image, which may be newer.
    decideCreation(request, broker.image, broker.image.unfencedBrokerIds(), 0, VALIDATE_ONLY_TOPIC_ID);
    if (options.validateOnly) return createdResult(topic.name, { name: topic.name, topicId: VALIDATE_ONLY_TOPIC_ID, configs: validateTopicConfigs(request.configs) }, request);
    const startedMs = broker.clock.monotonicMs();
    const created = await broker.createTopic(request);
    const leftMs = options.timeoutMs - (broker.clock.monotonicMs() - startedMs);
    if (!(await waitForImage(broker, () => leadersElected(broker.image, created.topicId), leftMs))) {
      const late = new DriftwoodError('REQUEST_TIMED_OUT', `topic ${topic.name} was created, but not every partition had a leader here within ${options.timeoutMs} ms`);
      return createdResult(topic.name, created, request, failure(late));
    }
    return createdResult(topic.name, created, request);
  } catch (error) {
    return refusedResult(topic.name, error);
  }
}

/**
 * CreateTopics: each topic created through the controller, then awaited until every
 * partition has a leader in this broker's metadata (Kafka waits for the metadata to reach
 * the brokers), within timeoutMs: a topic created but not led in time is REQUEST_TIMED_OUT.
 * numPartitions/replicationFactor -1 take the defaults (1; min(3, live brokers)); manual
 * assignments are INVALID_REQUEST; configs are taken as the HTTP route takes them; validateOnly
 * runs the controller's checks without creating anything.
 */
const createTopics: AdminHandler = async (body, _header, broker) => {
  const topics = body.topics as unknown as readonly CreatableTopic[];
  const twice = duplicated(topics.map((topic) => topic.name));
  const options = { validateOnly: body.validateOnly === true, timeoutMs: body.timeoutMs as number };
  return {
    throttleTimeMs: 0,
    topics: await Promise.all(topics.map((topic) => createOne(topic, { ...options, duplicate: twice.has(topic.name) }, broker))),
  };
};

// ---------------------------------------------------------------- DeleteTopics

/** A topic to delete: by name (every version), or by id (v6) when the name is null. */
interface DeleteAsk { readonly name: string | null; readonly topicId: Buffer }

async function deleteOne(ask: DeleteAsk, options: { timeoutMs: number; duplicate: boolean }, broker: KafkaAdminBroker): Promise<Struct> {
  const byId = !ask.topicId.equals(ZERO_UUID);
  const known = ask.name === null ? topicByUuid(broker.image, ask.topicId) : broker.image.topic(ask.name);
  const name = ask.name ?? known?.name ?? null;
  const answer = (error?: unknown): Struct => ({ name, topicId: known === undefined ? ask.topicId : topicUuid(known.topicId), ...(error === undefined ? { errorCode: 0, errorMessage: null } : failure(error)) });
  try {
    if (ask.name !== null && byId) throw new DriftwoodError('INVALID_REQUEST', 'give a topic name or a topic id, not both');
    if (options.duplicate) throw new DriftwoodError('INVALID_REQUEST', `topic ${name ?? ''} is asked for more than once`);
    if (name === null) {
      if (!byId) throw new DriftwoodError('INVALID_REQUEST', 'neither a topic name nor a topic id');
      return { name, topicId: ask.topicId, errorCode: kafkaErrors.UNKNOWN_TOPIC_ID, errorMessage: `no topic has id ${ask.topicId.toString('hex')}` };
    }
    if (name === OFFSETS_TOPIC) throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `${OFFSETS_TOPIC} is internal: the group coordinators own it`);
    validateTopicName(name);
    const startedMs = broker.clock.monotonicMs();
    await broker.deleteTopic(name);
    const leftMs = options.timeoutMs - (broker.clock.monotonicMs() - startedMs);
    if (!(await waitForImage(broker, () => broker.image.topic(name) === undefined, leftMs))) {
      return answer(new DriftwoodError('REQUEST_TIMED_OUT', `topic ${name} was deleted, but this broker had not applied it within ${options.timeoutMs} ms`));
    }
    return answer();
  } catch (error) {
    // A name that cannot be a topic's names no topic.
    return answer(isDriftwoodError(error, 'INVALID_TOPIC_EXCEPTION') && name !== OFFSETS_TOPIC ? new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', error.message) : error);
  }
}

/** DeleteTopics: each topic deleted through the controller and awaited in this broker's metadata within timeoutMs. */
const deleteTopics: AdminHandler = async (body, header, broker) => {
  const asks: readonly DeleteAsk[] = header.apiVersion >= 6
    ? body.topics as unknown as readonly DeleteAsk[]
    : (body.topicNames as readonly string[]).map((name) => ({ name, topicId: ZERO_UUID }));
  const twice = duplicated(asks.map((ask) => ask.name ?? (ask.topicId.equals(ZERO_UUID) ? null : ask.topicId.toString('hex'))));
  const timeoutMs = body.timeoutMs as number;
  const key = (ask: DeleteAsk): string => ask.name ?? ask.topicId.toString('hex');
  return {
    throttleTimeMs: 0,
    responses: await Promise.all(asks.map((ask) => deleteOne(ask, { timeoutMs, duplicate: twice.has(key(ask)) }, broker))),
  };
};

// ---------------------------------------------------------------- DescribeConfigs

interface ConfigResource { readonly resourceType: number; readonly resourceName: string; readonly configurationKeys: readonly string[] | null }

function resourceEntries(resource: ConfigResource, broker: KafkaAdminBroker): ConfigEntry[] {
  switch (resource.resourceType) {
    case RESOURCE_TOPIC: {
      const topic = broker.image.topic(resource.resourceName);
      if (topic === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${resource.resourceName} does not exist`);
      return topicConfigEntries(topic);
    }
    case RESOURCE_BROKER:
      // Kafka's rule: a broker describes itself, or the cluster default under the empty name.
      if (resource.resourceName !== '' && resource.resourceName !== String(broker.brokerId)) {
        throw new DriftwoodError('INVALID_REQUEST', `broker ${broker.brokerId} describes only itself (asked for broker '${resource.resourceName}')`);
      }
      return brokerConfigEntries(broker.brokerSettings, defaultReplicationFactor(broker.image));
    default:
      throw new DriftwoodError('INVALID_REQUEST', `resource type ${resource.resourceType} is not supported (topics 2 and brokers 4 are)`);
  }
}

/**
 * DescribeConfigs for topics (every config: an override given at creation or the default)
 * and for this broker (its startup settings and fixed defaults). Each resource answers on its
 * own: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION, another broker or resource type
 * INVALID_REQUEST. Synonyms when asked (v1+); no documentation (v3+).
 */
const describeConfigs: AdminHandler = (body, _header, broker) => {
  const includeSynonyms = body.includeSynonyms === true;
  const results = (body.resources as unknown as readonly ConfigResource[]).map((resource) => {
    const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
    try {
      const keys = resource.configurationKeys === null ? null : new Set(resource.configurationKeys);
      const entries = resourceEntries(resource, broker).filter((entry) => keys === null || keys.has(entry.name));
      return { ...base, errorCode: 0, errorMessage: null, configs: entries.map((entry) => describedEntry(entry, includeSynonyms)) };
    } catch (error) {
      return { ...base, ...failure(error), configs: [] };
    }
  });
  return Promise.resolve({ throttleTimeMs: 0, results });
};

function describedEntry(entry: ConfigEntry, includeSynonyms: boolean): Struct {
  return {
    name: entry.name,
    value: entry.value,
    readOnly: entry.readOnly,
    isDefault: entry.source === configSources.DEFAULT_CONFIG,
    configSource: entry.source,
    isSensitive: false,
    synonyms: includeSynonyms ? entry.synonyms.map((s) => ({ ...s })) : [],
    configType: entry.type,
    documentation: null,
  };
}

// ---------------------------------------------------------------- Metadata's auto-creation

/**
 * The error a Metadata answer carries for a topic this broker does not know. With
 * --kafka-auto-create-topics and a request that allows it (v4+ say so; older versions always
 * do, as in Kafka), the topic is created with the broker defaults and is LEADER_NOT_AVAILABLE
 * meanwhile, so the client asks again; otherwise UNKNOWN_TOPIC_OR_PARTITION.
 */
export function missingTopicError(name: string, body: Struct, header: RequestHeader, broker: KafkaAdminBroker): number {
  const allowed = header.apiVersion < 4 || body.allowAutoTopicCreation === true;
  if (broker.autoCreateTopic === null || !allowed || name === OFFSETS_TOPIC) return kafkaErrors.UNKNOWN_TOPIC_OR_PARTITION;
  try {
    validateTopicName(name);
  } catch {
    return kafkaErrors.INVALID_TOPIC_EXCEPTION;
  }
  broker.autoCreateTopic(name);
  return kafkaErrors.LEADER_NOT_AVAILABLE;
}

/** The admin APIs' handlers, by api key, for handlers.ts's map. */
export const adminHandlers: ReadonlyArray<readonly [number, AdminHandler]> = [
  [CREATE_TOPICS_KEY, createTopics],
  [DELETE_TOPICS_KEY, deleteTopics],
  [DESCRIBE_CONFIGS_KEY, describeConfigs],
];
assert.equal(new Set(adminHandlers.map(([key]) => key)).size, adminHandlers.length);
