// Kafka's topic admin APIs on the Kafka listener (issue 11), with KafkaJS's admin client
// unchanged against a three-node cluster: createTopics (configs, validateOnly, an existing
// topic, bad partitions, replication factor, config and name, the -1 defaults), the created
// topic's metadata, deleteTopics, describeConfigs for a topic and a broker; the newest
// versions (CreateTopics v7, DeleteTopics v6 by topic id, DescribeConfigs v4, all flexible)
// sent raw, since KafkaJS speaks only older ones. Auto-creation: off by default (a producer's
// send to a missing topic fails with UNKNOWN_TOPIC_OR_PARTITION and creates nothing), and on
// in a cluster started with --kafka-auto-create-topics.
import t, { type Test } from 'tap';
import { Kafka, logLevel, type Admin as KafkaAdmin, type ConfigResourceTypes } from 'kafkajs';
import { kafkaCall, kafkaCluster } from '../helpers/kafka.js';
import { h2Json, waitFor } from '../helpers/processes.js';

// KafkaJS's CommonJS build does not expose its ConfigResourceTypes enum to ESM imports; Kafka's numbers.
const TOPIC = 2 as unknown as ConfigResourceTypes.TOPIC;
const BROKER = 4 as unknown as ConfigResourceTypes.BROKER;

interface TopicView { name: string; id: string; configs: Record<string, unknown>; partitions: Array<{ partition: number; leader: number; replicas: number[] }> }

/**
 * A topic over node 1's HTTP API once it shows `status`, or as it is after 10 s: a Kafka
 * answer waits for the answering broker's metadata, and the others apply it moments later.
 */
async function httpTopic(http: string, name: string, status: 200 | 404): Promise<{ status: number; json: unknown }> {
  const url = `${http}/v1/topics/${encodeURIComponent(name)}`;
  try {
    return await waitFor(`topic ${name} answering ${status}`, 10_000, async () => {
      const answer = await h2Json(url);
      return answer.status === status ? answer : undefined;
    });
  } catch {
    return h2Json(url);
  }
}

async function connectedAdmin(t: Test, kafka: Kafka): Promise<KafkaAdmin> {
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  return admin;
}

interface KafkaJSError { type?: string; message?: string; errors?: KafkaJSError[]; originalError?: KafkaJSError; cause?: KafkaJSError }

/** Kafka's error names in a KafkaJS rejection: per-topic errors of an aggregate, or the error a retrier gave up on. */
async function errorTypes(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
    return [];
  } catch (error) {
    const types = (e: KafkaJSError | undefined): string[] => {
      if (e === undefined) return [];
      if (e.errors !== undefined) return e.errors.flatMap(types);
      const inner = types(e.originalError ?? e.cause);
      return inner.length > 0 ? inner : [e.type ?? e.message ?? 'unknown'];
    };
    return types(error as KafkaJSError);
  }
}

void t.test('KafkaJS admin: createTopics, metadata, deleteTopics and describeConfigs through the Kafka listener', { timeout: 180_000 }, async (t) => {
  const { kafkaPorts, http } = await kafkaCluster(t, 'kafka-admin');
  const kafka = new Kafka({ clientId: 'driftwood-admin-test', brokers: [`127.0.0.1:${kafkaPorts[0] ?? 0}`], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const admin = await connectedAdmin(t, kafka);

  const created = await admin.createTopics({
    topics: [{ topic: 'payments', numPartitions: 3, replicationFactor: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'min.insync.replicas', value: '2' }] }],
    timeout: 10_000,
  });
  t.equal(created, true, 'created');
  const { topics } = await admin.fetchTopicMetadata({ topics: ['payments'] });
  const partitions = topics[0]?.partitions ?? [];
  t.equal(partitions.length, 3, 'three partitions in the metadata at once (CreateTopics waited for leaders)');
  t.ok(partitions.every((p) => p.leader > 0 && p.replicas.length === 2 && p.isr.length === 2), 'each led, with two replicas in the ISR');
  const viewed = (await httpTopic(http, 'payments', 200)).json as TopicView;
  t.same(viewed.configs, { 'min.insync.replicas': 2, 'retention.ms': 3_600_000 }, 'the configs as the HTTP route stores them');
  t.same(viewed.partitions.map((p) => [p.partition, p.leader]).sort(), partitions.map((p) => [p.partitionId, p.leader]).sort(), 'the same leaders over HTTP');

  t.equal(await admin.createTopics({ topics: [{ topic: 'payments', numPartitions: 1 }] }), false, 'an existing topic: KafkaJS hears TOPIC_ALREADY_EXISTS');
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'payments', numPartitions: 1 }, { topic: 'zero', numPartitions: 0 }, { topic: 'fresh-one', numPartitions: 1 }], validateOnly: true, waitForLeaders: false })), ['TOPIC_ALREADY_EXISTS', 'INVALID_PARTITIONS'], 'per topic: the existing one and the bad one fail, the good one passes');
  // KafkaJS would wait for leaders of a topic validateOnly did not create (against Kafka too).
  t.equal(await admin.createTopics({ topics: [{ topic: 'dry-run', numPartitions: 2, replicationFactor: 3 }], validateOnly: true, waitForLeaders: false }), true, 'validateOnly passes');
  t.equal((await h2Json(`${http}/v1/topics/fresh-one`)).status, 404, 'validateOnly created nothing');
  t.equal((await h2Json(`${http}/v1/topics/dry-run`)).status, 404, 'validateOnly created nothing');
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'zero', numPartitions: 0 }] })), ['INVALID_PARTITIONS']);
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'wide', numPartitions: 1, replicationFactor: 4 }] })), ['INVALID_REPLICATION_FACTOR'], 'more replicas than brokers');
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'configured', configEntries: [{ name: 'no.such.config', value: '1' }] }] })), ['INVALID_CONFIG'], 'an unknown config');
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'configured', configEntries: [{ name: 'retention.ms', value: 'soon' }] }] })), ['INVALID_CONFIG'], 'a bad config value');
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'bad name!' }] })), ['INVALID_TOPIC_EXCEPTION']);
  t.same(await errorTypes(admin.createTopics({ topics: [{ topic: 'by-hand', replicaAssignment: [{ partition: 0, replicas: [1, 2] }] }] })), ['INVALID_REQUEST'], 'manual assignments are refused');
  for (const name of ['zero', 'wide', 'configured', 'bad name!', 'by-hand']) t.equal((await h2Json(`${http}/v1/topics/${encodeURIComponent(name)}`)).status, 404, `${name} was not created`);

  t.equal(await admin.createTopics({ topics: [{ topic: 'defaults' }] }), true, 'numPartitions and replicationFactor -1: the defaults');
  const defaults = (await httpTopic(http, 'defaults', 200)).json as TopicView;
  t.same([defaults.partitions.length, defaults.partitions[0]?.replicas.length], [1, 3], 'one partition, min(3, live brokers) replicas');

  await admin.deleteTopics({ topics: ['defaults'], timeout: 10_000 });
  t.equal((await httpTopic(http, 'defaults', 404)).status, 404, 'deleted');
  t.ok(await waitFor('defaults gone from the metadata', 10_000, async () => ((await admin.listTopics()).includes('defaults') ? undefined : true)), 'gone from the metadata');
  t.same(await errorTypes(admin.deleteTopics({ topics: ['never-was'] })), ['UNKNOWN_TOPIC_OR_PARTITION'], 'an unknown topic');

  const described = await admin.describeConfigs({ resources: [{ type: TOPIC, name: 'payments' }], includeSynonyms: false });
  const entries = new Map((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e]));
  t.match(entries.get('retention.ms'), { configValue: '3600000', isDefault: false }, 'an override');
  t.match(entries.get('min.insync.replicas'), { configValue: '2', isDefault: false });
  t.match(entries.get('segment.bytes'), { configValue: '1073741824', isDefault: true }, 'a default');
  t.equal(entries.size, 10, 'every topic config');
  const some = await admin.describeConfigs({ resources: [{ type: TOPIC, name: 'payments', configNames: ['cleanup.policy'] }], includeSynonyms: false });
  t.same(some.resources[0]?.configEntries.map((e) => [e.configName, e.configValue]), [['cleanup.policy', 'delete']], 'only the names asked for');
  t.same(await errorTypes(admin.describeConfigs({ resources: [{ type: TOPIC, name: 'never-was' }], includeSynonyms: false })), ['UNKNOWN_TOPIC_OR_PARTITION']);
  const brokerConfigs = await admin.describeConfigs({ resources: [{ type: BROKER, name: '2' }], includeSynonyms: false });
  const brokerEntries = new Map((brokerConfigs.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
  t.equal(brokerEntries.get('node.id'), '2', 'broker 2 answered for itself');
  t.equal(brokerEntries.get('advertised.listeners'), `PLAINTEXT://127.0.0.1:${kafkaPorts[1] ?? 0}`);
  t.equal(brokerEntries.get('auto.create.topics.enable'), 'false');
  t.equal(brokerEntries.get('default.replication.factor'), '3');
  t.equal(brokerEntries.get('log.retention.ms'), '604800000', 'the topic defaults under their broker names');

  // Auto-creation is off: KafkaJS's producer allows it (Metadata v4+), the broker does not.
  const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 2, initialRetryTime: 100 } });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  t.same(await errorTypes(producer.send({ topic: 'not-there', messages: [{ value: 'x' }] })), ['UNKNOWN_TOPIC_OR_PARTITION'], 'a send to a missing topic fails');
  t.equal((await h2Json(`${http}/v1/topics/not-there`)).status, 404, 'and creates nothing');

  // The newest versions, flexible, sent raw: what KafkaJS cannot ask.
  const port = kafkaPorts[2] ?? 0;
  const v7 = await kafkaCall(port, 19, 7, { topics: [{ name: 'flexible', numPartitions: 2, replicationFactor: 3, assignments: [], configs: [{ name: 'segment.ms', value: '60000' }] }], timeoutMs: 10_000, validateOnly: false });
  const result = (v7.topics as Array<Record<string, unknown>>)[0] ?? {};
  t.match(result, { name: 'flexible', errorCode: 0, errorMessage: null, numPartitions: 2, replicationFactor: 3 }, 'CreateTopics v7');
  const resultConfigs = new Map((result.configs as Array<{ name: string; value: string; configSource: number }>).map((c) => [c.name, c]));
  t.match(resultConfigs.get('segment.ms'), { value: '60000', configSource: 1 }, 'v5+ answer with the topic configs: an override is DYNAMIC_TOPIC_CONFIG');
  t.match(resultConfigs.get('retention.ms'), { value: '604800000', configSource: 5 }, 'a default is DEFAULT_CONFIG');
  const topicId = result.topicId as Buffer;
  t.notOk(topicId.equals(Buffer.alloc(16)), 'v7 answers with the topic id');
  const metadata = await kafkaCall(port, 3, 12, { topics: [{ topicId: Buffer.alloc(16), name: 'flexible' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  t.ok(((metadata.topics as Array<{ topicId: Buffer }>)[0]?.topicId ?? Buffer.alloc(16)).equals(topicId), 'the id Metadata gives');
  const assigned = await kafkaCall(port, 19, 7, { topics: [{ name: 'assigned', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 2] }], configs: [] }], timeoutMs: 5000, validateOnly: false });
  t.match((assigned.topics as unknown[])[0], { name: 'assigned', errorCode: 42, numPartitions: -1 }, 'manual assignments: INVALID_REQUEST');
  const twice = await kafkaCall(port, 19, 7, { topics: [1, 2].map(() => ({ name: 'twice', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] })), timeoutMs: 5000, validateOnly: false });
  t.same((twice.topics as Array<{ errorCode: number }>).map((r) => r.errorCode), [42, 42], 'a name asked twice: INVALID_REQUEST for both');

  const unknownId = Buffer.alloc(16, 7);
  const deleted = await kafkaCall(port, 20, 6, { topics: [{ name: null, topicId }, { name: null, topicId: unknownId }, { name: 'never-was', topicId: Buffer.alloc(16) }], timeoutMs: 10_000 });
  t.match(deleted.responses, [{ name: 'flexible', errorCode: 0 }, { name: null, errorCode: 100 }, { name: 'never-was', errorCode: 3 }], 'DeleteTopics v6: by id, an unknown id UNKNOWN_TOPIC_ID, an unknown name UNKNOWN_TOPIC_OR_PARTITION');
  t.equal((await httpTopic(http, 'flexible', 404)).status, 404, 'deleted by id');

  const v4 = await kafkaCall(port, 32, 4, {
    resources: [
      { resourceType: 2, resourceName: 'payments', configurationKeys: ['retention.ms'] },
      { resourceType: 4, resourceName: '3', configurationKeys: ['node.id', 'num.partitions'] },
      { resourceType: 4, resourceName: '1', configurationKeys: null },
      { resourceType: 8, resourceName: '3', configurationKeys: null },
    ],
    includeSynonyms: true, includeDocumentation: false,
  });
  t.match(v4.results, [
    { errorCode: 0, resourceName: 'payments', configs: [{ name: 'retention.ms', value: '3600000', configSource: 1, configType: 5, synonyms: [{ name: 'retention.ms', value: '3600000', source: 1 }, { name: 'log.retention.ms', value: '604800000', source: 5 }] }] },
    { errorCode: 0, resourceName: '3', configs: [{ name: 'node.id', value: '3', configSource: 4 }, { name: 'num.partitions', value: '1', configSource: 5 }] },
    { errorCode: 42, resourceName: '1', configs: [] },
    { errorCode: 42, resourceType: 8, configs: [] },
  ], 'DescribeConfigs v4: synonyms, sources and types; another broker and an unknown resource type are INVALID_REQUEST');
});

void t.test('--kafka-auto-create-topics: a metadata request that allows it creates the topic', { timeout: 120_000 }, async (t) => {
  const { kafkaPorts, http } = await kafkaCluster(t, 'kafka-autocreate', ['--kafka-auto-create-topics']);
  const port = kafkaPorts[1] ?? 0;
  const refused = await kafkaCall(port, 3, 9, { topics: [{ name: 'not-allowed' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  t.match(refused.topics, [{ name: 'not-allowed', errorCode: 3 }], 'a request that does not allow it: UNKNOWN_TOPIC_OR_PARTITION');
  const first = await kafkaCall(port, 3, 9, { topics: [{ name: 'auto' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  t.match(first.topics, [{ name: 'auto', errorCode: 5 }], 'LEADER_NOT_AVAILABLE while it is created');
  const invalid = await kafkaCall(port, 3, 9, { topics: [{ name: 'bad name!' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  t.match(invalid.topics, [{ errorCode: 17 }], 'a name that cannot be a topic: INVALID_TOPIC_EXCEPTION');
  const auto = await waitFor('the auto-created topic led', 20_000, async () => {
    const answer = await h2Json(`${http}/v1/topics/auto`);
    const topic = answer.json as TopicView;
    return answer.status === 200 && topic.partitions.every((p) => p.leader > 0) ? topic : undefined;
  });
  t.same([auto.partitions.length, auto.partitions[0]?.replicas.length, auto.configs], [1, 3, {}], 'num.partitions 1, replication factor min(3, live brokers), no overrides');
  t.equal((await h2Json(`${http}/v1/topics/not-allowed`)).status, 404, 'not created when not allowed');

  const kafka = new Kafka({ clientId: 'driftwood-autocreate-test', brokers: [`127.0.0.1:${kafkaPorts[0] ?? 0}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 200 } });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const sent = await producer.send({ topic: 'made-by-producer', acks: -1, messages: [{ value: 'first' }] });
  t.match(sent, [{ topicName: 'made-by-producer', partition: 0, errorCode: 0 }], 'KafkaJS\'s send to a missing topic succeeds once it is created');
  t.equal((await httpTopic(http, 'made-by-producer', 200)).status, 200, 'the topic is there');
  const admin = await connectedAdmin(t, kafka);
  const configs = await admin.describeConfigs({ resources: [{ type: BROKER, name: '1', configNames: ['auto.create.topics.enable'] }], includeSynonyms: false });
  t.match(configs.resources[0]?.configEntries, [{ configName: 'auto.create.topics.enable', configValue: 'true', isDefault: false }], 'the broker says so');
});
