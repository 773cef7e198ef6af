// Request header v0–v2 and response header v0–v1 (RequestHeader.json, ResponseHeader.json).
// ClientId is never compact, even in header v2: Kafka pins it with flexibleVersions "none"
// so that a broker can read it before it knows whether the request is flexible.
import type { MessageSpec } from '../spec.js';

export const requestHeader: MessageSpec = {
  apiKey: -1, type: 'header', name: 'RequestHeader', validVersions: '0-2', flexibleVersions: '2+',
  fields: [
    { name: 'requestApiKey', type: 'int16', versions: '0+' },
    { name: 'requestApiVersion', type: 'int16', versions: '0+' },
    { name: 'correlationId', type: 'int32', versions: '0+' },
    { name: 'clientId', type: 'string', versions: '1+', nullableVersions: '1+', flexibleVersions: 'none', default: '' },
  ],
};

export const responseHeader: MessageSpec = {
  apiKey: -1, type: 'header', name: 'ResponseHeader', validVersions: '0-1', flexibleVersions: '1+',
  fields: [{ name: 'correlationId', type: 'int32', versions: '0+' }],
};
