// Byte-exact vectors derived by hand from the protocol guide, bytes from an independent
// implementation (KafkaJS's own encoders and decoders), the header-version rule, the
// advertised table and the error-number table.
import t from 'tap';
import { createRequire } from 'node:module';
import { apis, apiVersionsTable, decodeRequest, decodeResponse, encodeResponse, requestHeaderVersion, responseHeaderVersion, unsupportedApiVersionsResponse } from '../../src/kafka/protocol/apis.js';
import { kafkaErrorCode, kafkaErrorFor, kafkaErrors } from '../../src/kafka/protocol/kafka-errors.js';
import { errorCodes, type ErrorCode } from '../../storage/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

void t.test('ApiVersions v0 request, header v1 with client id "test"', (t) => {
  // api key 18, version 0, correlation id 1, client id int16 length 4 + "test", empty body
  const { header, body } = decodeRequest(hex('0012 0000 00000001 0004 74657374'));
  t.same(header, { apiKey: 18, apiVersion: 0, correlationId: 1, clientId: 'test' });
  t.same(body, {});
  t.end();
});

void t.test('Metadata v1 request with one topic', (t) => {
  // key 3, version 1, correlation 7, client id "c"; topics: int32 count 1, int16 length 3 "foo"
  const { header, body } = decodeRequest(hex('0003 0001 00000007 0001 63 00000001 0003 666f6f'));
  t.same(header, { apiKey: 3, apiVersion: 1, correlationId: 7, clientId: 'c' });
  t.same(body, { topics: [{ name: 'foo' }] });
  // v1 "all topics" is a null array: int32 -1
  t.same(decodeRequest(hex('0003 0001 00000008 ffff ffffffff')).body, { topics: null });
  t.end();
});

void t.test('ApiVersions v3 request: header v2, client id still int16-prefixed, empty tagged sections', (t) => {
  // header: key, version 3, correlation 2, client id "test" (NOT compact), 0 header tags;
  // body: compact strings "x" (len+1 = 2) and "1", then 0 body tags
  const { header, body } = decodeRequest(hex('0012 0003 00000002 0004 74657374 00 02 78 02 31 00'));
  t.same(header, { apiKey: 18, apiVersion: 3, correlationId: 2, clientId: 'test' });
  t.same(body, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
  t.end();
});

void t.test('Heartbeat v4 response: response header v1 with an empty tagged section', (t) => {
  const bytes = encodeResponse(12, 4, 9, { throttleTimeMs: 0, errorCode: 27 });
  // correlation 9, header tags 0; throttle 0, REBALANCE_IN_PROGRESS 27, body tags 0
  t.equal(bytes.toString('hex'), '00000009' + '00' + '00000000' + '001b' + '00');
  t.end();
});

void t.test('KIP-511: the UNSUPPORTED_VERSION answer is a v0 body under header v0', (t) => {
  const table = apiVersionsTable();
  const expected = [Buffer.from('0000002a', 'hex'), Buffer.from('0023', 'hex'), Buffer.alloc(4)];
  expected[2]!.writeInt32BE(table.length);
  for (const { apiKey, minVersion, maxVersion } of table) {
    const entry = Buffer.alloc(6);
    entry.writeInt16BE(apiKey, 0);
    entry.writeInt16BE(minVersion, 2);
    entry.writeInt16BE(maxVersion, 4);
    expected.push(entry);
  }
  t.equal(unsupportedApiVersionsResponse(42).toString('hex'), Buffer.concat(expected).toString('hex'));
  t.end();
});

void t.test('an ApiVersions probe beyond v3 is read far enough to answer it', (t) => {
  // v4 from a newer client: header v2 (open-ended flexible range), body unknown
  const error = t.throws(() => decodeRequest(hex('0012 0004 0000000b 0001 63 00 00 00')));
  t.match(error, { code: 'UNSUPPORTED_VERSION', hints: { apiKey: 18, apiVersion: 4, correlationId: 11, clientId: 'c' } });
  t.end();
});

void t.test('header versions follow flexibility; ApiVersions responses always use v0', (t) => {
  t.equal(requestHeaderVersion(3, 8), 1);
  t.equal(requestHeaderVersion(3, 9), 2);
  t.equal(responseHeaderVersion(3, 8), 0);
  t.equal(responseHeaderVersion(3, 9), 1);
  t.equal(requestHeaderVersion(18, 3), 2);
  t.equal(responseHeaderVersion(18, 3), 0);
  t.equal(requestHeaderVersion(0, 9), 2);
  t.equal(responseHeaderVersion(1, 11), 0);
  t.equal(responseHeaderVersion(1, 12), 1);
  t.end();
});

void t.test('the advertised table covers the versions asked for, and only described ones', (t) => {
  const wanted: Record<number, [number, number]> = {
    18: [0, 3], 3: [0, 12], 0: [3, 9], 1: [4, 12], 2: [1, 7], 10: [0, 4], 11: [0, 9], 14: [0, 5], 12: [0, 4],
    13: [0, 5], 8: [0, 8], 9: [1, 7], 22: [0, 4], 19: [0, 7], 20: [0, 6], 15: [0, 5], 16: [0, 4], 32: [0, 4],
  };
  const table = apiVersionsTable();
  t.equal(table.length, Object.keys(wanted).length);
  for (const { apiKey, minVersion, maxVersion } of table) {
    const [min, max] = wanted[apiKey]!;
    t.ok(minVersion <= min && maxVersion >= max, `API ${apiKey}: ${minVersion}-${maxVersion} covers ${min}-${max}`);
    t.equal(apis.get(apiKey)!.request.validVersions, `${minVersion}-${maxVersion}`);
  }
  t.end();
});

void t.test('every driftwood error code has a Kafka number, checked against Errors.java', (t) => {
  for (const code of Object.keys(errorCodes) as ErrorCode[]) t.ok(kafkaErrorFor[code] in kafkaErrors, code);
  t.equal(kafkaErrorCode('OFFSET_OUT_OF_RANGE'), 1);
  t.equal(kafkaErrorCode('CORRUPT_MESSAGE'), 2);
  t.equal(kafkaErrorCode('UNKNOWN_TOPIC_OR_PARTITION'), 3);
  t.equal(kafkaErrorCode('NOT_LEADER_OR_FOLLOWER'), 6);
  t.equal(kafkaErrorCode('NOT_ENOUGH_REPLICAS'), 19);
  t.equal(kafkaErrorCode('UNSUPPORTED_VERSION'), 35);
  t.equal(kafkaErrorCode('INVALID_REQUEST'), 42);
  t.equal(kafkaErrorCode('UNKNOWN_PRODUCER_ID'), 59);
  t.equal(kafkaErrorCode('UNKNOWN_SERVER_ERROR'), -1);
  t.equal(kafkaErrorCode(undefined), -1, 'a non-driftwood error is UNKNOWN_SERVER_ERROR');
  t.equal(kafkaErrors.MEMBER_ID_REQUIRED, 79);
  t.equal(kafkaErrors.REBALANCE_IN_PROGRESS, 27);
  t.equal(kafkaErrors.DUPLICATE_SEQUENCE_NUMBER, 46);
  t.end();
});

// ------------------------------------------------------------------ KafkaJS, independently

interface KafkaJsRequest { apiKey: number; apiVersion: number; encode: () => Promise<unknown> }
interface KafkaJsResponse { decode: (data: Buffer) => Promise<Record<string, unknown>> }
const require = createRequire(import.meta.url);
const frame = require('kafkajs/src/protocol/request.js') as (args: { correlationId: number; clientId: string; request: KafkaJsRequest }) => Promise<{ buffer: Buffer }>;
const kafkajs = (path: string): unknown => require(`kafkajs/src/protocol/requests/${path}.js`);

async function kafkajsRequest(path: string, args: Record<string, unknown>): Promise<Buffer> {
  const request = (kafkajs(path) as (a: Record<string, unknown>) => KafkaJsRequest)(args);
  const { buffer } = await frame({ correlationId: 5, clientId: 'kjs', request });
  t.equal(buffer.readInt32BE(0), buffer.length - 4, 'KafkaJS frames with a size prefix');
  return buffer.subarray(4);
}

async function kafkajsDecode(path: string, frameBytes: Buffer): Promise<Record<string, unknown>> {
  // KafkaJS decodes the body; the response header v0 is the correlation id alone.
  return (kafkajs(path) as KafkaJsResponse).decode(frameBytes.subarray(4));
}

void t.test('KafkaJS-encoded requests decode here', async (t) => {
  const metadata = decodeRequest(await kafkajsRequest('metadata/v4/request', { topics: ['a', 'bb'], allowAutoTopicCreation: false }));
  t.same(metadata.header, { apiKey: 3, apiVersion: 4, correlationId: 5, clientId: 'kjs' });
  t.same(metadata.body, { topics: [{ name: 'a' }, { name: 'bb' }], allowAutoTopicCreation: false });

  const join = decodeRequest(await kafkajsRequest('joinGroup/v5/request', {
    groupId: 'g', sessionTimeout: 30000, rebalanceTimeout: 60000, memberId: '', groupInstanceId: null, protocolType: 'consumer',
    groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from([0, 1, 2]) }],
  }));
  t.same(join.body, {
    groupId: 'g', sessionTimeoutMs: 30000, rebalanceTimeoutMs: 60000, memberId: '', groupInstanceId: null, protocolType: 'consumer',
    protocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from([0, 1, 2]) }],
  });

  const fetch = decodeRequest(await kafkajsRequest('fetch/v4/request', {
    replicaId: -1, maxWaitTime: 500, minBytes: 1, maxBytes: 1048576, isolationLevel: 0,
    topics: [{ topic: 't', partitions: [{ partition: 2, fetchOffset: '42', maxBytes: 65536 }] }],
  }));
  t.same(fetch.body, { replicaId: -1, maxWaitMs: 500, minBytes: 1, maxBytes: 1048576, isolationLevel: 0, topics: [{ topic: 't', partitions: [{ partition: 2, fetchOffset: 42n, partitionMaxBytes: 65536 }] }] });

  const commit = decodeRequest(await kafkajsRequest('offsetCommit/v2/request', {
    groupId: 'g', groupGenerationId: 3, memberId: 'm', retentionTime: -1, topics: [{ topic: 't', partitions: [{ partition: 0, offset: '17' }] }],
  }));
  t.same(commit.body, { groupId: 'g', generationIdOrMemberEpoch: 3, memberId: 'm', retentionTimeMs: -1n, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 17n, committedMetadata: null }] }] });

  const produce = decodeRequest(await kafkajsRequest('produce/v3/request', {
    acks: -1, timeout: 30000, topicData: [{ topic: 't', partitions: [{ partition: 1, messages: [{ key: 'k', value: 'v' }] }] }],
  }));
  const topicData = produce.body.topicData as { name: string; partitionData: { index: number; records: Buffer }[] }[];
  t.equal(topicData[0]!.name, 't');
  t.equal(topicData[0]!.partitionData[0]!.index, 1);
  const records = topicData[0]!.partitionData[0]!.records;
  t.equal(records.readInt32BE(8) + 12, records.length, 'the records are one whole RecordBatch, untouched');
  t.equal(records.readInt8(16), 2, 'magic 2');
});

void t.test('responses encoded here decode in KafkaJS', async (t) => {
  const metadata = await kafkajsDecode('metadata/v4/response', encodeResponse(3, 4, 5, {
    throttleTimeMs: 0, brokers: [{ nodeId: 1, host: 'h', port: 9092, rack: null }], clusterId: 'c', controllerId: 1,
    topics: [{ errorCode: 0, name: 't', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1, 2], isrNodes: [1] }] }],
  }));
  t.match(metadata, { brokers: [{ nodeId: 1, host: 'h', port: 9092, rack: null }], clusterId: 'c', controllerId: 1, topicMetadata: [{ topic: 't', partitionMetadata: [{ partitionId: 0, leader: 1, replicas: [1, 2], isr: [1] }] }] });

  const versions = await kafkajsDecode('apiVersions/v0/response', encodeResponse(18, 0, 5, { errorCode: 0, apiKeys: apiVersionsTable().map((r) => ({ ...r })) }));
  t.same(versions.apiVersions, apiVersionsTable());

  const join = await kafkajsDecode('joinGroup/v2/response', encodeResponse(11, 2, 5, {
    throttleTimeMs: 0, errorCode: 0, generationId: 4, protocolName: 'RoundRobinAssigner', leader: 'm1', memberId: 'm1', members: [{ memberId: 'm1', metadata: Buffer.from([9]) }],
  }));
  t.match(join, { generationId: 4, groupProtocol: 'RoundRobinAssigner', leaderId: 'm1', memberId: 'm1', members: [{ memberId: 'm1' }] });
});

void t.test('a response round-trips through decodeResponse with its correlation id', (t) => {
  const decoded = decodeResponse(12, 0, encodeResponse(12, 0, 77, { errorCode: 0 }));
  t.same(decoded, { correlationId: 77, body: { errorCode: 0 } });
  t.end();
});
