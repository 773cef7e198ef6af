// The registry of described APIs, the rule that picks header versions, and the request and
// response entry points the Kafka listener uses. Everything here is pure: bytes in, bytes out.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../../storage/errors.js';
import { decodeFrom, encodeInto, isFlexible } from './codec.js';
import { inVersions, parseVersions, type MessageSpec, type Struct } from './spec.js';
import { Reader, Writer, defaultDecodeLimits, type DecodeLimits } from './wire.js';
import { requestHeader, responseHeader } from './messages/header.js';
import { apiVersionsRequest, apiVersionsResponse } from './messages/api-versions.js';
import { metadataRequest, metadataResponse } from './messages/metadata.js';
import { produceRequest, produceResponse } from './messages/produce.js';
import { fetchRequest, fetchResponse } from './messages/fetch.js';
import { listOffsetsRequest, listOffsetsResponse } from './messages/list-offsets.js';
import { findCoordinatorRequest, findCoordinatorResponse } from './messages/find-coordinator.js';
import { joinGroupRequest, joinGroupResponse } from './messages/join-group.js';
import { syncGroupRequest, syncGroupResponse } from './messages/sync-group.js';
import { heartbeatRequest, heartbeatResponse } from './messages/heartbeat.js';
import { leaveGroupRequest, leaveGroupResponse } from './messages/leave-group.js';
import { offsetCommitRequest, offsetCommitResponse } from './messages/offset-commit.js';
import { offsetFetchRequest, offsetFetchResponse } from './messages/offset-fetch.js';
import { initProducerIdRequest, initProducerIdResponse } from './messages/init-producer-id.js';
import { createTopicsRequest, createTopicsResponse } from './messages/create-topics.js';
import { deleteTopicsRequest, deleteTopicsResponse } from './messages/delete-topics.js';
import { describeGroupsRequest, describeGroupsResponse } from './messages/describe-groups.js';
import { listGroupsRequest, listGroupsResponse } from './messages/list-groups.js';
import { describeConfigsRequest, describeConfigsResponse } from './messages/describe-configs.js';

export interface Api { readonly request: MessageSpec; readonly response: MessageSpec }

export const API_VERSIONS_KEY = 18;
// Kafka's UNSUPPORTED_VERSION, which the KIP-511 answer carries.
const UNSUPPORTED_VERSION_CODE = 35;

const pairs: readonly Api[] = [
  { request: produceRequest, response: produceResponse },
  { request: fetchRequest, response: fetchResponse },
  { request: listOffsetsRequest, response: listOffsetsResponse },
  { request: metadataRequest, response: metadataResponse },
  { request: offsetCommitRequest, response: offsetCommitResponse },
  { request: offsetFetchRequest, response: offsetFetchResponse },
  { request: findCoordinatorRequest, response: findCoordinatorResponse },
  { request: joinGroupRequest, response: joinGroupResponse },
  { request: heartbeatRequest, response: heartbeatResponse },
  { request: leaveGroupRequest, response: leaveGroupResponse },
  { request: syncGroupRequest, response: syncGroupResponse },
  { request: describeGroupsRequest, response: describeGroupsResponse },
  { request: listGroupsRequest, response: listGroupsResponse },
  { request: apiVersionsRequest, response: apiVersionsResponse },
  { request: createTopicsRequest, response: createTopicsResponse },
  { request: deleteTopicsRequest, response: deleteTopicsResponse },
  { request: initProducerIdRequest, response: initProducerIdResponse },
  { request: describeConfigsRequest, response: describeConfigsResponse },
];

export const apis: ReadonlyMap<number, Api> = new Map(pairs.map((api) => {
  // A request and its response must agree on the key, the versions and which are flexible.
  assert.equal(api.request.apiKey, api.response.apiKey);
  assert.equal(api.request.validVersions, api.response.validVersions, api.request.name);
  assert.equal(api.request.flexibleVersions, api.response.flexibleVersions, api.request.name);
  return [api.request.apiKey, api];
}));

export interface ApiVersionRange { readonly apiKey: number; readonly minVersion: number; readonly maxVersion: number }

/** What the listener advertises: exactly the versions the descriptions cover. */
export function apiVersionsTable(): ApiVersionRange[] {
  return [...apis.values()]
    .map(({ request }) => {
      const { min, max } = parseVersions(request.validVersions);
      return { apiKey: request.apiKey, minVersion: min, maxVersion: max };
    })
    .sort((a, b) => a.apiKey - b.apiKey);
}

export function isSupported(apiKey: number, apiVersion: number): boolean {
  const api = apis.get(apiKey);
  return api !== undefined && inVersions(api.request.validVersions, apiVersion);
}

/**
 * Flexible versions take request header v2; the others v1 (v0, without a client id, only
 * ever served ControlledShutdown v0, which driftwood does not speak). A version beyond the
 * described ones counts as flexible when the API's flexible range is open-ended, which is how
 * a newer client's ApiVersions probe is still read far enough to answer it (KIP-511).
 */
export function requestHeaderVersion(apiKey: number, apiVersion: number): number {
  const api = apis.get(apiKey);
  return api !== undefined && isFlexible(api.request, apiVersion) ? 2 : 1;
}

/** Flexible versions answer with response header v1, except ApiVersions: always v0, so a
 * client can read the answer before it knows which versions the broker speaks. */
export function responseHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === API_VERSIONS_KEY) return 0;
  const api = apis.get(apiKey);
  assert.ok(api !== undefined, `no API ${apiKey}`);
  return isFlexible(api.response, apiVersion) ? 1 : 0;
}

export interface RequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
}

export interface DecodedRequest { readonly header: RequestHeader; readonly body: Struct }

// Key, version and correlation id: what is needed to answer even a request that fails.
const FIXED_HEADER_BYTES = 8;

/**
 * Decodes one request frame (without its size prefix). An unknown key or version throws
 * UNSUPPORTED_VERSION with the header in its hints, so the listener can still answer (for
 * ApiVersions with the v0 answer of KIP-511); malformed bytes throw INVALID_REQUEST.
 */
export function decodeRequest(frame: Buffer, limits: DecodeLimits = defaultDecodeLimits): DecodedRequest {
  const r = new Reader(frame, limits);
  if (frame.length < FIXED_HEADER_BYTES) throw r.fail(`a request header needs ${FIXED_HEADER_BYTES} bytes, got ${frame.length}`);
  const apiKey = frame.readInt16BE(0);
  const apiVersion = frame.readInt16BE(2);
  r.path.push('header');
  const raw = decodeFrom(r, requestHeader, requestHeaderVersion(apiKey, apiVersion));
  r.path.pop();
  const header: RequestHeader = { apiKey, apiVersion, correlationId: raw.correlationId as number, clientId: raw.clientId as string | null };
  const api = apis.get(apiKey);
  if (api === undefined || !inVersions(api.request.validVersions, apiVersion)) {
    throw new DriftwoodError('UNSUPPORTED_VERSION', `API ${apiKey} v${apiVersion}`, { ...header });
  }
  r.path.push(api.request.name);
  const body = decodeFrom(r, api.request, apiVersion);
  if (r.remaining() !== 0) throw r.fail(`${r.remaining()} trailing bytes`);
  return { header, body };
}

/** Encodes a request (without size prefix): the client side, used by tests and tools. */
export function encodeRequest(header: RequestHeader, body: Struct): Buffer {
  const api = apis.get(header.apiKey);
  assert.ok(api !== undefined, `no API ${header.apiKey}`);
  const w = new Writer();
  encodeInto(w, requestHeader, requestHeaderVersion(header.apiKey, header.apiVersion), {
    requestApiKey: header.apiKey, requestApiVersion: header.apiVersion, correlationId: header.correlationId, clientId: header.clientId,
  });
  encodeInto(w, api.request, header.apiVersion, body);
  return w.finish();
}

function responseWriter(apiKey: number, apiVersion: number, correlationId: number, body: Struct): Writer {
  const api = apis.get(apiKey);
  assert.ok(api !== undefined, `no API ${apiKey}`);
  const w = new Writer();
  encodeInto(w, responseHeader, responseHeaderVersion(apiKey, apiVersion), { correlationId });
  encodeInto(w, api.response, apiVersion, body);
  return w;
}

/** Encodes a response (header and body, without size prefix). */
export function encodeResponse(apiKey: number, apiVersion: number, correlationId: number, body: Struct): Buffer {
  return responseWriter(apiKey, apiVersion, correlationId, body).finish();
}

/** The same as chunks: record batches above a few KiB stay uncopied, for a writev. */
export function encodeResponseChunks(apiKey: number, apiVersion: number, correlationId: number, body: Struct): Buffer[] {
  return responseWriter(apiKey, apiVersion, correlationId, body).finishChunks();
}

export function decodeResponse(apiKey: number, apiVersion: number, frame: Buffer, limits: DecodeLimits = defaultDecodeLimits): { correlationId: number; body: Struct } {
  const api = apis.get(apiKey);
  assert.ok(api !== undefined, `no API ${apiKey}`);
  const r = new Reader(frame, limits);
  const header = decodeFrom(r, responseHeader, responseHeaderVersion(apiKey, apiVersion));
  r.path.push(api.response.name);
  const body = decodeFrom(r, api.response, apiVersion);
  if (r.remaining() !== 0) throw r.fail(`${r.remaining()} trailing bytes`);
  return { correlationId: header.correlationId as number, body };
}

/**
 * KIP-511: a client that asks ApiVersions in a version the broker does not know gets a v0
 * body with UNSUPPORTED_VERSION and the broker's ranges, and retries with a version it finds
 * there (librdkafka probes with v3; newer Java clients with v4).
 */
export function unsupportedApiVersionsResponse(correlationId: number): Buffer {
  return encodeResponse(API_VERSIONS_KEY, 0, correlationId, {
    errorCode: UNSUPPORTED_VERSION_CODE,
    apiKeys: apiVersionsTable().map((range) => ({ ...range })),
  });
}
