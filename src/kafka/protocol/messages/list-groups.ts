// ListGroups (key 16), ListGroupsRequest.json / ListGroupsResponse.json, v0–v4.
import type { MessageSpec } from '../spec.js';

export const listGroupsRequest: MessageSpec = {
  apiKey: 16, type: 'request', name: 'ListGroupsRequest', validVersions: '0-4', flexibleVersions: '3+',
  fields: [{ name: 'statesFilter', type: '[]string', versions: '4+' }],
};

export const listGroupsResponse: MessageSpec = {
  apiKey: 16, type: 'response', name: 'ListGroupsResponse', validVersions: '0-4', flexibleVersions: '3+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'groups', type: '[]ListedGroup', versions: '0+', fields: [
      { name: 'groupId', type: 'string', versions: '0+' },
      { name: 'protocolType', type: 'string', versions: '0+' },
      { name: 'groupState', type: 'string', versions: '4+' },
    ] },
  ],
};
