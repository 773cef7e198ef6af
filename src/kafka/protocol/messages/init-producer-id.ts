// InitProducerId (key 22), InitProducerIdRequest.json / InitProducerIdResponse.json, v0–v4.
import type { MessageSpec } from '../spec.js';

export const initProducerIdRequest: MessageSpec = {
  apiKey: 22, type: 'request', name: 'InitProducerIdRequest', validVersions: '0-4', flexibleVersions: '2+',
  fields: [
    { name: 'transactionalId', type: 'string', versions: '0+', nullableVersions: '0+' },
    { name: 'transactionTimeoutMs', type: 'int32', versions: '0+' },
    { name: 'producerId', type: 'int64', versions: '3+', default: -1n },
    { name: 'producerEpoch', type: 'int16', versions: '3+', default: -1 },
  ],
};

export const initProducerIdResponse: MessageSpec = {
  apiKey: 22, type: 'response', name: 'InitProducerIdResponse', validVersions: '0-4', flexibleVersions: '2+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'producerId', type: 'int64', versions: '0+', default: -1n },
    { name: 'producerEpoch', type: 'int16', versions: '0+' },
  ],
};
