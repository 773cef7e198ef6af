// DescribeConfigs (key 32), DescribeConfigsRequest.json / DescribeConfigsResponse.json, v0–v4.
import type { MessageSpec } from '../spec.js';

export const describeConfigsRequest: MessageSpec = {
  apiKey: 32, type: 'request', name: 'DescribeConfigsRequest', validVersions: '0-4', flexibleVersions: '4+',
  fields: [
    { name: 'resources', type: '[]DescribeConfigsResource', versions: '0+', fields: [
      { name: 'resourceType', type: 'int8', versions: '0+' },
      { name: 'resourceName', type: 'string', versions: '0+' },
      { name: 'configurationKeys', type: '[]string', versions: '0+', nullableVersions: '0+' },
    ] },
    { name: 'includeSynonyms', type: 'bool', versions: '1+', default: false },
    { name: 'includeDocumentation', type: 'bool', versions: '3+', default: false },
  ],
};

export const describeConfigsResponse: MessageSpec = {
  apiKey: 32, type: 'response', name: 'DescribeConfigsResponse', validVersions: '0-4', flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    { name: 'results', type: '[]DescribeConfigsResult', versions: '0+', fields: [
      { name: 'errorCode', type: 'int16', versions: '0+' },
      { name: 'errorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
      { name: 'resourceType', type: 'int8', versions: '0+' },
      { name: 'resourceName', type: 'string', versions: '0+' },
      { name: 'configs', type: '[]DescribeConfigsResourceResult', versions: '0+', fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'value', type: 'string', versions: '0+', nullableVersions: '0+' },
        { name: 'readOnly', type: 'bool', versions: '0+' },
        { name: 'isDefault', type: 'bool', versions: '0' },
        { name: 'configSource', type: 'int8', versions: '1+', default: -1 },
        { name: 'isSensitive', type: 'bool', versions: '0+' },
        { name: 'synonyms', type: '[]DescribeConfigsSynonym', versions: '1+', fields: [
          { name: 'name', type: 'string', versions: '1+' },
          { name: 'value', type: 'string', versions: '1+', nullableVersions: '0+' },
          { name: 'source', type: 'int8', versions: '1+' },
        ] },
        { name: 'configType', type: 'int8', versions: '3+', default: 0 },
        { name: 'documentation', type: 'string', versions: '3+', nullableVersions: '0+' },
      ] },
    ] },
  ],
};
