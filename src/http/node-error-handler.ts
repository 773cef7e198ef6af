// One answer shape for every failure a node's HTTP server meets: {error: CODE, message,
// ...hints} with the code's status (storage/errors.ts). fastify refuses some requests itself
// (bad JSON, a body over the route's limit, a content type no parser takes, a schema
// mismatch, an undecodable URL); those get the project's codes too, so a client never has to
// know fastify's. Only an error nobody expected answers 500, and it is logged: it is a bug.
import type { FastifyBaseLogger, FastifyError } from 'fastify';
import { DriftwoodError, isDriftwoodError, type ErrorCode } from '../../storage/errors.js';

// What these handlers use of fastify's request and reply (which are typed per server kind).
interface RequestSeen { readonly method: string; readonly url: string; readonly routeOptions: { readonly url?: string | undefined } }
interface ReplySent<R> { status(code: number): { send(payload: unknown): R } }

/** fastify's codes for a request it refused, and ours for them. */
const frameworkCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'REQUEST_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_REQUEST',
  FST_ERR_BAD_URL: 'INVALID_REQUEST',
  FST_ERR_VALIDATION: 'INVALID_REQUEST',
};

/** The project's error for whatever a handler, a hook or fastify threw. */
export function toDriftwoodError(error: unknown): DriftwoodError {
  if (isDriftwoodError(error)) return error;
  const fastifyError = error as Partial<FastifyError> | null;
  const message = error instanceof Error ? error.message : String(error);
  if (fastifyError?.validation !== undefined) return new DriftwoodError('INVALID_REQUEST', message);
  const known = typeof fastifyError?.code === 'string' ? frameworkCodes[fastifyError.code] : undefined;
  if (known !== undefined) return new DriftwoodError(known, message);
  // Another refusal fastify or a parser made (a 4xx of theirs): bad input all the same. A
  // raw-body parser's own errors (JSON.parse's SyntaxError with status 400) land here too.
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new DriftwoodError('REQUEST_TOO_LARGE', message);
    if (status === 415) return new DriftwoodError('UNSUPPORTED_MEDIA_TYPE', message);
    return new DriftwoodError('INVALID_REQUEST', message);
  }
  return new DriftwoodError('UNKNOWN_SERVER_ERROR', message);
}

/** fastify's error handler for a node: answers in the project's shape, logs the bugs. */
export function errorHandler(log: FastifyBaseLogger): <R>(error: unknown, request: RequestSeen, reply: ReplySent<R>) => R {
  return (error, request, reply) => {
    const answer = toDriftwoodError(error);
    if (answer.code === 'UNKNOWN_SERVER_ERROR') log.error({ err: error, method: request.method, route: request.routeOptions.url }, 'unexpected error answering a request');
    return reply.status(answer.status).send(answer.toJSON());
  };
}

/** No route for this method and path. */
export function answerUnknownRoute<R>(request: RequestSeen, reply: ReplySent<R>): R {
  const answer = new DriftwoodError('UNKNOWN_ROUTE', `${request.method} ${request.url.slice(0, 200)}`);
  return reply.status(answer.status).send(answer.toJSON());
}
