// ListOffsets (key 2), ListOffsetsRequest.json / ListOffsetsResponse.json, v1–v7.
import type { MessageSpec } from '../spec.js';

export const listOffsetsRequest: MessageSpec = {
  apiKey: 2, type: 'request', name: 'ListOffsetsRequest', validVersions: '1-7', flexibleVersions: '6+',
  fields: [
    { name: 'replicaId', type: 'int32', versions: '0+' },
    { name: 'isolationLevel', type: 'int8', versions: '2+' },
    { name: 'topics', type: '[]ListOffsetsTopic', versions: '0+', fields: [
      { name: 'name', type: 'string', versions: '0+' },
      { name: 'partitions', type: '[]ListOffsetsPartition', versions: '0+', fields: [
        { name: 'partitionIndex', type: 'int32', versions: '0+' },
        { name: 'currentLeaderEpoch', type: 'int32', versions: '4+', default: -1 },
        { name: 'timestamp', type: 'int64', versions: '0+' },
      ] },
    ] },
  ],
};

export const listOffsetsResponse: MessageSpec = {
  apiKey: 2, type: 'response', name: 'ListOffsetsResponse', validVersions: '1-7', flexibleVersions: '6+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+' },
    { name: 'topics', type: '[]ListOffsetsTopicResponse', versions: '0+', fields: [
      { name: 'name', type: 'string', versions: '0+' },
      { name: 'partitions', type: '[]ListOffsetsPartitionResponse', versions: '0+', fields: [
        { name: 'partitionIndex', type: 'int32', versions: '0+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'timestamp', type: 'int64', versions: '1+', default: -1n },
        { name: 'offset', type: 'int64', versions: '1+', default: -1n },
        { name: 'leaderEpoch', type: 'int32', versions: '4+', default: -1 },
      ] },
    ] },
  ],
};
