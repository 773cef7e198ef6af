// The topic admin handlers without processes: requests encoded at every version the codec
// describes, answered by KafkaHandlers over an in-memory image and a manual clock, so the
// timeouts are exact: CreateTopics waits for leaders up to timeoutMs (REQUEST_TIMED_OUT once
// it passes, the topic created all the same), DeleteTopics waits for its removal, and the
// answers carry each version's fields.
import t from 'tap';
import type { TimerHandle } from '../../storage/clock.js';
import { DriftwoodError } from '../../storage/errors.js';
import { createTopic, deleteTopic, type CreateTopicRequest } from '../../src/controller/commands.js';
import type { TopicState } from '../../src/controller/image.js';
import { NO_LEADER, type MetadataRecord } from '../../src/controller/records.js';
import { KafkaHandlers, type KafkaBroker } from '../../src/kafka/handlers.js';
import { decodeResponse, encodeRequest } from '../../src/kafka/protocol/apis.js';
import { TestLog } from '../controller/helpers.js';

class ManualClock {
  private now = 0;
  private timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];
  nowMs(): number { return this.now; }
  monotonicMs(): number { return this.now; }
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { at: this.now + delayMs, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }
  advance(ms: number): void {
    this.now += ms;
    const due = this.timers.filter((timer) => timer.at <= this.now && !timer.cancelled);
    this.timers = this.timers.filter((timer) => !due.includes(timer));
    for (const timer of due) timer.callback();
  }
  get pending(): number { return this.timers.filter((timer) => !timer.cancelled).length; }
}

interface Fixture { handlers: KafkaHandlers; log: TestLog; clock: ManualClock; leaderless: Set<string>; created: CreateTopicRequest[]; autoCreated: string[] }

/** Three live brokers; creations and deletions commit at once, leaderless for names in `leaderless`. */
function fixture(autoCreate = false): Fixture {
  const log = new TestLog();
  log.addBrokers([1, 2, 3]);
  const clock = new ManualClock();
  const leaderless = new Set<string>();
  const created: CreateTopicRequest[] = [];
  const autoCreated: string[] = [];
  let ids = 0;
  const refused = (): Promise<never> => Promise.reject(new DriftwoodError('INVALID_REQUEST', 'not in this test'));
  const broker: KafkaBroker = {
    image: log.image,
    clock,
    brokerId: 2,
    controllerId: () => 1,
    produce: refused,
    initProducerId: refused,
    consume: refused,
    waitForAny: refused,
    offsetForTimestamp: refused,
    // The group APIs are not called here.
    groups: {} as KafkaBroker['groups'],
    createTopic: (request) => {
      created.push(request);
      ids += 1;
      const topicId = `topic${String(ids).padStart(17, '0')}`;
      let records: MetadataRecord[];
      try {
        records = createTopic(request, log.image, log.image.unfencedBrokerIds(), 0, topicId);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      log.commit(leaderless.has(request.name) ? records.map((r) => (r.type === 'Partition' ? { ...r, leader: NO_LEADER } : r)) : records);
      return Promise.resolve(log.image.topicById(topicId) as TopicState);
    },
    deleteTopic: (name) => {
      try {
        log.commit(deleteTopic(name, log.image));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return Promise.resolve();
    },
    brokerSettings: { brokerId: 2, kafkaListen: '127.0.0.1:9092', kafkaAdvertised: 'b2:9092', logDirs: '/data/2/logs', quorumVoters: '1@b1:1,2@b2:2,3@b3:3', autoCreateTopics: autoCreate, requestBytesMax: 1024, connectionsIdleMs: 1000, replicaLagTimeMaxMs: 10_000 },
    autoCreateTopic: autoCreate ? (name) => { autoCreated.push(name); } : null,
  };
  return { handlers: new KafkaHandlers(broker), log, clock, leaderless, created, autoCreated };
}

let correlationId = 0;
async function call(f: Fixture, apiKey: number, apiVersion: number, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  correlationId += 1;
  const answer = await f.handlers.handle(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'unit' }, body as never), { id: 1, remoteAddress: '127.0.0.1', remotePort: 1 });
  if (answer === null) throw new Error('no answer');
  return decodeResponse(apiKey, apiVersion, answer).body;
}

const creatable = (name: string, numPartitions = 2, replicationFactor = 3, configs: Array<{ name: string; value: string | null }> = []): Record<string, unknown> => ({ name, numPartitions, replicationFactor, assignments: [], configs });

void t.test('CreateTopics at every version: created and led, or refused per topic', async (t) => {
  for (let version = 0; version <= 7; version += 1) {
    const f = fixture();
    const answer = await call(f, 19, version, { topics: [creatable('a', -1, -1, [{ name: 'retention.ms', value: '1000' }]), creatable('b', 0), creatable('c', 1, 4), creatable('d', 1, 1, [{ name: 'retention.ms', value: null }])], timeoutMs: 1000, validateOnly: false });
    const results = answer.topics as Array<Record<string, unknown>>;
    t.same(results.map((r) => [r.name, r.errorCode]), [['a', 0], ['b', 37], ['c', 38], ['d', 40]], `v${version}: per-topic errors`);
    t.same(f.created.map((r) => [r.name, r.partitions, r.replicationFactor, r.configs]), [['a', 1, 3, { 'retention.ms': '1000' }]], `v${version}: only the valid topic went to the controller, with the defaults for -1`);
    if (version >= 1) t.match(results[1], { errorMessage: /partitions must be/ }, `v${version}: an error message`);
    if (version >= 5) {
      t.match(results[0], { numPartitions: 1, replicationFactor: 3 }, `v${version}: what the topic got`);
      t.match((results[0]?.configs as unknown[]).find((c) => (c as { name: string }).name === 'retention.ms'), { value: '1000', configSource: 1, readOnly: true, isSensitive: false });
    }
    if (version >= 7) t.notOk((results[0]?.topicId as Buffer).equals(Buffer.alloc(16)), 'v7: the topic id');
  }
});

void t.test('CreateTopics waits for leaders up to timeoutMs; past it REQUEST_TIMED_OUT, created all the same', async (t) => {
  const f = fixture();
  f.leaderless.add('slow');
  const answering = call(f, 19, 4, { topics: [creatable('slow')], timeoutMs: 5000, validateOnly: false });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(f.clock.pending, 1, 'waiting on a timer');
  f.clock.advance(4999);
  let done = false;
  void answering.then(() => { done = true; });
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(done, 'still waiting just before the timeout');
  f.clock.advance(1);
  t.match((await answering).topics, [{ name: 'slow', errorCode: 7, errorMessage: /was created, but not every partition had a leader/ }]);
  t.ok(f.log.image.topic('slow') !== undefined, 'the topic exists');

  // Leaders elected while it waits: answered at once, no timer left behind.
  const g = fixture();
  g.leaderless.add('late');
  const late = call(g, 19, 4, { topics: [creatable('late', 1)], timeoutMs: 5000, validateOnly: false });
  await new Promise((resolve) => setImmediate(resolve));
  const topic = g.log.image.topic('late');
  if (topic === undefined) throw new Error('not created');
  g.log.commit([{ type: 'PartitionChange', topicId: topic.topicId, partition: 0, leader: 1 }]);
  t.match((await late).topics, [{ name: 'late', errorCode: 0 }]);
  t.equal(g.clock.pending, 0, 'the timer was cancelled');

  const h = fixture();
  h.leaderless.add('now');
  t.match((await call(h, 19, 4, { topics: [creatable('now')], timeoutMs: 0, validateOnly: false })).topics, [{ errorCode: 7 }], 'timeoutMs 0: no wait');
});

void t.test('validateOnly, duplicates, assignments, the internal topic', async (t) => {
  const f = fixture();
  const answer = await call(f, 19, 5, { topics: [creatable('dry'), creatable('twice'), creatable('twice'), { ...creatable('manual', -1, -1), assignments: [{ partitionIndex: 0, brokerIds: [1] }] }, creatable('__consumer_offsets'), creatable('bad/name')], timeoutMs: 1000, validateOnly: true });
  t.same((answer.topics as Array<{ name: string; errorCode: number }>).map((r) => [r.name, r.errorCode]), [['dry', 0], ['twice', 42], ['twice', 42], ['manual', 42], ['__consumer_offsets', 17], ['bad/name', 17]]);
  t.match((answer.topics as unknown[])[0], { numPartitions: 2, replicationFactor: 3 }, 'validateOnly says what the topic would get');
  t.same(f.created, [], 'nothing sent to the controller');
  t.equal(f.log.image.topics().length, 0, 'nothing created');
});

void t.test('DeleteTopics at every version, by name and (v6) by id', async (t) => {
  for (let version = 0; version <= 6; version += 1) {
    const f = fixture();
    await call(f, 19, 7, { topics: [creatable('gone', 1)], timeoutMs: 1000, validateOnly: false });
    const asks = version >= 6 ? { topics: [{ name: 'gone', topicId: Buffer.alloc(16) }, { name: 'never', topicId: Buffer.alloc(16) }] } : { topicNames: ['gone', 'never'] };
    const answer = await call(f, 20, version, { ...asks, timeoutMs: 1000 });
    t.same((answer.responses as Array<{ name: string; errorCode: number }>).map((r) => [r.name, r.errorCode]), [['gone', 0], ['never', 3]], `v${version}`);
    t.equal(f.log.image.topic('gone'), undefined, `v${version}: deleted`);
  }
  const f = fixture();
  const created = await call(f, 19, 7, { topics: [creatable('by-id', 1)], timeoutMs: 1000, validateOnly: false });
  const topicId = (created.topics as Array<{ topicId: Buffer }>)[0]?.topicId ?? Buffer.alloc(16);
  const answer = await call(f, 20, 6, { topics: [{ name: null, topicId }, { name: 'by-id', topicId }, { name: null, topicId: Buffer.alloc(16, 1) }], timeoutMs: 1000 });
  t.match(answer.responses, [{ name: 'by-id', errorCode: 0 }, { errorCode: 42 }, { name: null, errorCode: 100 }], 'by id; both a name and an id is INVALID_REQUEST; an unknown id UNKNOWN_TOPIC_ID');
});

void t.test('DescribeConfigs at every version: topics, this broker, refusals per resource', async (t) => {
  const f = fixture();
  await call(f, 19, 0, { topics: [creatable('conf', 1, 1, [{ name: 'cleanup.policy', value: 'delete' }])], timeoutMs: 1000 });
  for (let version = 0; version <= 4; version += 1) {
    const answer = await call(f, 32, version, {
      resources: [
        { resourceType: 2, resourceName: 'conf', configurationKeys: ['cleanup.policy', 'flush.ms'] },
        { resourceType: 4, resourceName: '2', configurationKeys: ['broker.id'] },
        { resourceType: 4, resourceName: '', configurationKeys: ['num.partitions'] },
        { resourceType: 2, resourceName: 'missing', configurationKeys: null },
        { resourceType: 4, resourceName: '3', configurationKeys: null },
        { resourceType: 16, resourceName: 'x', configurationKeys: null },
      ],
      includeSynonyms: true, includeDocumentation: true,
    });
    const results = answer.results as Array<{ errorCode: number; configs: Array<Record<string, unknown>> }>;
    t.same(results.map((r) => r.errorCode), [0, 0, 0, 3, 42, 42], `v${version}: per-resource errors`);
    t.same(results[0]?.configs.map((c) => [c.name, c.value]), [['cleanup.policy', 'delete'], ['flush.ms', String(Number.MAX_SAFE_INTEGER)]], `v${version}: the keys asked for`);
    if (version === 0) t.same(results[0]?.configs.map((c) => c.isDefault), [false, true], 'v0: isDefault');
    else t.same(results[0]?.configs.map((c) => c.configSource), [1, 5], `v${version}: sources`);
    if (version >= 1) t.equal((results[0]?.configs[0]?.synonyms as unknown[]).length, 2, `v${version}: synonyms`);
    if (version >= 3) t.same(results[0]?.configs.map((c) => c.configType), [7, 5], `v${version}: types`);
    t.same([results[1]?.configs[0]?.value, results[2]?.configs[0]?.value], ['2', '1'], `v${version}: this broker, and the cluster default under ''`);
  }
});

void t.test('Metadata: a missing topic is created only when the broker and the request allow it', async (t) => {
  const off = fixture(false);
  t.match((await call(off, 3, 9, { topics: [{ name: 'm' }], allowAutoTopicCreation: true })).topics, [{ name: 'm', errorCode: 3 }], 'off: UNKNOWN_TOPIC_OR_PARTITION');
  const on = fixture(true);
  t.match((await call(on, 3, 9, { topics: [{ name: 'm' }], allowAutoTopicCreation: false })).topics, [{ errorCode: 3 }], 'on, not allowed: UNKNOWN_TOPIC_OR_PARTITION');
  t.match((await call(on, 3, 9, { topics: [{ name: 'm' }], allowAutoTopicCreation: true })).topics, [{ errorCode: 5 }], 'on, allowed: LEADER_NOT_AVAILABLE');
  t.match((await call(on, 3, 1, { topics: [{ name: 'old' }] })).topics, [{ errorCode: 5 }], 'v1-3 always allow it, as in Kafka');
  t.match((await call(on, 3, 9, { topics: [{ name: 'a b' }], allowAutoTopicCreation: true })).topics, [{ errorCode: 17 }], 'an invalid name: INVALID_TOPIC_EXCEPTION');
  t.same(on.autoCreated, ['m', 'old'], 'only the allowed, valid names were created');
});
