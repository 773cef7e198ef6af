// One port for both protocols: brokers speak HTTP/2 to each other, people use curl and
// browsers over HTTP/1.1. In cleartext a plain TCP server looks at the first bytes of each
// connection and hands it to an HTTP/2 server when they are the HTTP/2 preface ("PRI * ..."),
// to an HTTP/1.1 server otherwise; over TLS, ALPN picks (h2, else http/1.1). Both run
// fastify's handler, behind the bearer-token check when the node has a token.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2, { type Http2Server } from 'node:http2';
import net from 'node:net';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttp2Options, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DriftwoodError } from '../../storage/errors.js';
import { classifyRoute, needsToken, TokenCheck, type AuthPolicy } from './auth.js';
import { defaultConnectionLimits, type ConnectionLimits } from './limits.js';
import { answerUnknownRoute, errorHandler, toDriftwoodError } from './node-error-handler.js';
import type { NodeSecurity, TlsServerFiles } from './security.js';

/** A fastify app on the dual-protocol server (typed as the HTTP/2 one it mostly is). */
export type HttpApp = FastifyInstance<Http2Server>;

/** fastify on one port for HTTP/2 (peers) and HTTP/1.1 (curl, browsers). */
export function createHttpApp(options: { bodyLimitBytes: number; server?: DualServerOptions; logger?: FastifyBaseLogger; security?: NodeSecurity }): HttpApp {
  const tls = options.security?.tls;
  const policy = options.security?.auth;
  const auth = policy === undefined ? undefined : new RequestAuth(policy);
  const factory = tls === undefined ? dualProtocolServerFactory(options.server) : secureServerFactory(tls, options.server);
  const fastifyOptions: FastifyHttp2Options<Http2Server> = {
    http2: true,
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    // Per-request lines come from the metrics hook at debug level, without headers: an
    // Authorization header must never reach a log.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    // A URL the router cannot decode (or a parameter over its length) is bad input like any
    // other: the project's shape. fastify answers these before any hook runs, so the token
    // is checked here too, or a stranger would get 400 where the route answers 401.
    frameworkErrors: (error, request, reply) => {
      const answer = (auth === undefined ? null : auth.refusal(request)) ?? toDriftwoodError(error);
      // The reply's types depend on a route's generics, and no route matched here.
      const plain = reply as unknown as { status(code: number): { headers(values: Record<string, string>): { send(payload: unknown): unknown } } };
      plain.status(answer.status).headers(answer.code === 'AUTHENTICATION_FAILED' ? CHALLENGE : {}).send(answer.toJSON());
    },
    // fastify's types know either an http or an http2 server; this one hands out both.
    serverFactory: factory as unknown as NonNullable<FastifyHttp2Options<Http2Server>['serverFactory']>,
  };
  const app = Fastify(fastifyOptions);
  // Before any route: every failure, fastify's own included, answers {error: CODE, message}.
  app.setErrorHandler(errorHandler(app.log));
  app.setNotFoundHandler(answerUnknownRoute);
  // Before any route, so that no route is ever added without the check.
  if (auth !== undefined) addAuthHook(app, auth);
  // Query strings and path parameters arrive as text, so their schemas coerce ("10" -> 10);
  // JSON bodies carry their own types, so theirs do not (a key of 5 is refused, not "5").
  const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false });
  const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  return app;
}

/** What a refusal for want of the token says besides its body (RFC 6750). */
const CHALLENGE = { 'www-authenticate': 'Bearer realm="driftwood"' };

/** The token check of one node: whether a request needs the token and carries it. */
class RequestAuth {
  private readonly tokens: TokenCheck;

  constructor(private readonly policy: AuthPolicy) {
    this.tokens = new TokenCheck(policy.token);
  }

  /** AUTHENTICATION_FAILED when the request needs the token and lacks it, else null. */
  refusal(request: { readonly method: string; readonly url: string; readonly routeOptions?: { readonly url?: string | undefined }; readonly headers: { readonly authorization?: string | string[] | undefined } }): DriftwoodError | null {
    // The route's pattern when the router matched one (it has decoded the URL), else the URL as sent.
    const routeClass = classifyRoute(request.method, request.routeOptions?.url ?? request.url);
    if (!needsToken(routeClass, this.policy.reads)) return null;
    try {
      this.tokens.check(request.headers.authorization);
      return null;
    } catch (error) {
      assert(error instanceof DriftwoodError, 'the token check fails only with a DriftwoodError');
      assert.equal(error.code, 'AUTHENTICATION_FAILED');
      return error;
    }
  }
}

/**
 * Refuses, before the body is read, a request that needs the token and does not carry it:
 * 401 AUTHENTICATION_FAILED in the project's error shape.
 */
function addAuthHook(app: HttpApp, auth: RequestAuth): void {
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const refused = auth.refusal(request);
    if (refused === null) {
      done();
      return;
    }
    void reply.status(refused.status).headers(CHALLENGE).send(refused.toJSON());
  });
}

/** How often HTTP/1.1 connections are checked against headersTimeoutMs and requestTimeoutMs. */
const TIMEOUT_CHECK_MS = 1000;

/** The HTTP/2 connection preface starts with this; no HTTP/1.1 method does. */
const PREFACE_START = Buffer.from('PRI ');

export interface DualServerOptions extends ConnectionLimits {
  /** HTTP/2 flow-control window for each stream and connection, in bytes (bigger = faster uploads). */
  readonly windowBytes: number;
}

export const defaultDualServerOptions: DualServerOptions = { windowBytes: 8 * 1024 * 1024, ...defaultConnectionLimits };

type Handler = (request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse | http2.Http2ServerResponse) => void;

/** The HTTP/2 settings a node announces: its window, and how many streams a client may open at once. */
function h2Settings(options: DualServerOptions): http2.Settings {
  assert(options.streamsPerConnectionMax >= 1, 'a connection takes at least one stream');
  return { initialWindowSize: options.windowBytes, maxConcurrentStreams: options.streamsPerConnectionMax };
}

/** A fastify `serverFactory`: returns the TCP server fastify listens on. */
export function dualProtocolServerFactory(options: DualServerOptions = defaultDualServerOptions): (handler: Handler) => net.Server {
  return (handler) => {
    // Node checks the two timeouts every connectionsCheckingInterval (30 s by default, which
    // would let a slowloris hold a connection three times longer than headersTimeoutMs).
    const h1 = http.createServer({ headersTimeout: options.headersTimeoutMs, requestTimeout: options.requestTimeoutMs, connectionsCheckingInterval: TIMEOUT_CHECK_MS, keepAliveTimeout: 5000 }, handler as http.RequestListener);
    const h2 = http2.createServer({ settings: h2Settings(options) }, handler as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void);
    h2.on('session', (session) => {
      session.once('connect', () => { session.setLocalWindowSize(options.windowBytes); });
    });
    h2.setTimeout(options.idleTimeoutMs);
    // Open connections (peers keep HTTP/2 sessions alive) would hold close() forever: closing
    // the server ends them.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      // A connection that says nothing holds a slot of connectionsMax: it gets as long as
      // headers get, then the idle timeout once it has spoken.
      socket.setTimeout(options.headersTimeoutMs, () => socket.destroy());
      socket.once('data', (first: Buffer) => {
        socket.setTimeout(options.idleTimeoutMs);
        socket.pause();
        socket.unshift(first);
        if (first.subarray(0, PREFACE_START.length).equals(PREFACE_START)) {
          // The HTTP/2 session reads what was put back itself; resuming here would flush it.
          h2.emit('connection', socket);
          return;
        }
        h1.emit('connection', socket);
        socket.resume();
      });
    });
    server.maxConnections = options.connectionsMax;
    // An http.Server starts tracking its connections against headersTimeout and requestTimeout
    // when it emits 'listening'; this one never listens itself (it is handed sockets), so
    // without this a slowloris would be bound only by the idle timeout (seen: no 408 in 45 s).
    server.once('listening', () => h1.emit('listening'));
    const close = server.close.bind(server);
    server.close = (callback?: (error?: Error) => void): net.Server => {
      close(callback);
      for (const socket of sockets) socket.destroy();
      h1.close();
      h2.close();
      return server;
    };
    return server;
  };
}

/**
 * A fastify `serverFactory` for TLS: one HTTP/2 secure server that also answers HTTP/1.1
 * (allowHTTP1), the protocol chosen by ALPN. Client certificates are not asked for: callers
 * prove themselves with the bearer token.
 */
export function secureServerFactory(tls: TlsServerFiles, options: DualServerOptions = defaultDualServerOptions): (handler: Handler) => net.Server {
  return (handler) => {
    const server = http2.createSecureServer(
      {
        cert: tls.cert,
        key: tls.key,
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        settings: h2Settings(options),
      },
      handler as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void,
    );
    server.on('session', (session) => {
      session.once('connect', () => { session.setLocalWindowSize(options.windowBytes); });
    });
    server.setTimeout(options.idleTimeoutMs);
    server.maxConnections = options.connectionsMax;
    // As in cleartext: peers keep sessions open, so closing the server ends them.
    const sockets = new Set<net.Socket>();
    server.on('connection', (socket: net.Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
    });
    // A client that fails the handshake (no CA, wrong protocol) must not take the server down.
    server.on('tlsClientError', () => undefined);
    const close = server.close.bind(server);
    server.close = ((callback?: (error?: Error) => void) => {
      close(callback);
      for (const socket of sockets) socket.destroy();
      return server;
    });
    return server;
  };
}
