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
