import t from 'tap';
import { Client } from 'undici';
import { createHttpApp } from '../../src/http/node-dual-server.js';

void t.test('one port answers HTTP/1.1 (fetch, curl) and HTTP/2 cleartext (undici, peers)', async (t) => {
  const app = createHttpApp({ bodyLimitBytes: 1024 * 1024 });
  app.get('/version', (request) => ({ version: request.raw.httpVersion }));
  app.post('/echo', (request) => ({ body: request.body, version: request.raw.httpVersion }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const h1 = await fetch(`http://127.0.0.1:${port}/version`);
  t.same(await h1.json(), { version: '1.1' });
  const h1post = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  t.same(await h1post.json(), { body: { a: 1 }, version: '1.1' });
  const client = new Client(`http://127.0.0.1:${port}`, { allowH2: true, useH2c: true } as Client.Options);
  t.teardown(() => client.close());
  for (let i = 0; i < 3; i += 1) {
    const h2 = await client.request({ method: 'POST', path: '/echo', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
    t.same(await h2.body.json(), { body: { i }, version: '2.0' }, `request ${i} over one HTTP/2 connection`);
  }
});

// Found by test/security/fuzz-cluster.test.ts (FUZZ_SEED=49679797): a URL the router cannot
// decode, or a parameter over the router's length, was answered 400 before the token check,
// so a stranger got INVALID_REQUEST from internal routes instead of 401.
void t.test('with a token, a URL the router refuses is still a 401 without the token', async (t) => {
  const token = 'tok-dual-server-test';
  const app = createHttpApp({ bodyLimitBytes: 1024, security: { auth: { token, reads: 'token' } } });
  app.get('/internal/things/:id', () => ({ ok: true }));
  app.get('/healthz', () => ({ ok: true }));
  t.teardown(() => app.close());
  const long = 'x'.repeat(10_000);
  for (const url of ['/internal/things/%zz', `/internal/things/${long}`, '/v1/topics/%zz']) {
    const refused = await app.inject({ method: 'GET', url });
    t.equal(refused.statusCode, 401, `${url.slice(0, 40)} without the token`);
    t.match(refused.json(), { error: 'AUTHENTICATION_FAILED' });
    t.equal(refused.headers['www-authenticate'], 'Bearer realm="driftwood"');
    const wrong = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer wrong' } });
    t.equal(wrong.statusCode, 401, `${url.slice(0, 40)} with a wrong token`);
    const bad = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    t.equal(bad.statusCode, 400, `${url.slice(0, 40)} with the token: the URL's own refusal`);
    t.match(bad.json(), { error: 'INVALID_REQUEST' });
    t.equal(bad.headers['www-authenticate'], undefined);
  }
  const probe = await app.inject({ method: 'GET', url: '/healthz/%zz' });
  t.equal(probe.statusCode, 401, 'a probe path with more after it is not a probe');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the probe itself stays open');
});
