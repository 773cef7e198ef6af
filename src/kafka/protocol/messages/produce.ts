// Produce (key 0), ProduceRequest.json / ProduceResponse.json, from v3 (record batch v2
// only). Records are the RecordBatch v2 bytes, passed through as a Buffer.
import type { MessageSpec } from '../spec.js';

export const produceRequest: MessageSpec = {
  apiKey: 0, type: 'request', name: 'ProduceRequest', validVersions: '3-9', flexibleVersions: '9+',
  fields: [
    { name: 'transactionalId', type: 'string', versions: '3+', nullableVersions: '0+', default: null },
    { name: 'acks', type: 'int16', versions: '0+' },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
    { name: 'topicData', type: '[]TopicProduceData', versions: '0+', fields: [
      { name: 'name', type: 'string', versions: '0+' },
      { name: 'partitionData', type: '[]PartitionProduceData', versions: '0+', fields: [
        { name: 'index', type: 'int32', versions: '0+' },
        { name: 'records', type: 'records', versions: '0+', nullableVersions: '0+' },
      ] },
    ] },
  ],
};

export const produceResponse: MessageSpec = {
  apiKey: 0, type: 'response', name: 'ProduceResponse', validVersions: '3-9', flexibleVersions: '9+',
  fields: [
    { name: 'responses', type: '[]TopicProduceResponse', versions: '0+', fields: [
      { name: 'name', type: 'string', versions: '0+' },
      { name: 'partitionResponses', type: '[]PartitionProduceResponse', versions: '0+', fields: [
        { name: 'index', type: 'int32', versions: '0+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'baseOffset', type: 'int64', versions: '0+' },
        { name: 'logAppendTimeMs', type: 'int64', versions: '2+', default: -1n },
        { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1n },
        { name: 'recordErrors', type: '[]BatchIndexAndErrorMessage', versions: '8+', fields: [
          { name: 'batchIndex', type: 'int32', versions: '8+' },
          { name: 'batchIndexErrorMessage', type: 'string', versions: '8+', nullableVersions: '8+', default: null },
        ] },
        { name: 'errorMessage', type: 'string', versions: '8+', nullableVersions: '8+', default: null },
      ] },
    ] },
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
  ],
};
