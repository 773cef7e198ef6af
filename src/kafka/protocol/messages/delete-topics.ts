// DeleteTopics (key 20), DeleteTopicsRequest.json / DeleteTopicsResponse.json, v0–v6. v6
// names topics by name or id; the plain name list stops at v5.
import type { MessageSpec } from '../spec.js';

export const deleteTopicsRequest: MessageSpec = {
  apiKey: 20, type: 'request', name: 'DeleteTopicsRequest', validVersions: '0-6', flexibleVersions: '4+',
  fields: [
    { name: 'topics', type: '[]DeleteTopicState', versions: '6+', fields: [
      { name: 'name', type: 'string', versions: '6+', nullableVersions: '6+', default: null },
      { name: 'topicId', type: 'uuid', versions: '6+' },
    ] },
    { name: 'topicNames', type: '[]string', versions: '0-5' },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
  ],
};

export const deleteTopicsResponse: MessageSpec = {
  apiKey: 20, type: 'response', name: 'DeleteTopicsResponse', validVersions: '0-6', flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'responses', type: '[]DeletableTopicResult', versions: '0+', fields: [
      { name: 'name', type: 'string', versions: '0+', nullableVersions: '6+' },
      { name: 'topicId', type: 'uuid', versions: '6+' },
      { name: 'errorCode', type: 'int16', versions: '0+' },
      { name: 'errorMessage', type: 'string', versions: '5+', nullableVersions: '5+', default: null },
    ] },
  ],
};
