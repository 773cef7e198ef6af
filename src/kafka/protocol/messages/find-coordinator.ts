// FindCoordinator (key 10), FindCoordinatorRequest.json / FindCoordinatorResponse.json. v4
// batches keys (KIP-699): the single-key fields stop at v3.
import type { MessageSpec } from '../spec.js';

export const findCoordinatorRequest: MessageSpec = {
  apiKey: 10, type: 'request', name: 'FindCoordinatorRequest', validVersions: '0-4', flexibleVersions: '3+',
  fields: [
    { name: 'key', type: 'string', versions: '0-3' },
    { name: 'keyType', type: 'int8', versions: '1+', default: 0 },
    { name: 'coordinatorKeys', type: '[]string', versions: '4+' },
  ],
};

export const findCoordinatorResponse: MessageSpec = {
  apiKey: 10, type: 'response', name: 'FindCoordinatorResponse', validVersions: '0-4', flexibleVersions: '3+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0-3' },
    { name: 'errorMessage', type: 'string', versions: '1-3', nullableVersions: '1-3', default: null },
    { name: 'nodeId', type: 'int32', versions: '0-3' },
    { name: 'host', type: 'string', versions: '0-3' },
    { name: 'port', type: 'int32', versions: '0-3' },
    { name: 'coordinators', type: '[]Coordinator', versions: '4+', fields: [
      { name: 'key', type: 'string', versions: '4+' },
      { name: 'nodeId', type: 'int32', versions: '4+' },
      { name: 'host', type: 'string', versions: '4+' },
      { name: 'port', type: 'int32', versions: '4+' },
      { name: 'errorCode', type: 'int16', versions: '4+' },
      { name: 'errorMessage', type: 'string', versions: '4+', nullableVersions: '4+', default: null },
    ] },
  ],
};
