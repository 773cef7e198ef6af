// The bearer-token decisions without a server: which routes need the token, the constant-time
// check, and the token file (trimmed; empty, oversized or non-ASCII refused).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { authorizationHeader, classifyRoute, needsToken, TOKEN_BYTES_MAX, TokenCheck, tokenProblem } from '../../src/http/auth.js';
import { readPemFile, readTokenFile } from '../../src/http/node-credentials.js';

void t.test('routes by class', (t) => {
  t.equal(classifyRoute('POST', '/internal/raft/messages'), 'internal');
  t.equal(classifyRoute('GET', '/internal/replica/offsets/:topicId'), 'internal', 'an internal read is internal');
  t.equal(classifyRoute('POST', '/internal/controller/heartbeat'), 'internal');
  t.equal(classifyRoute('POST', '/v1/topics'), 'mutating');
  t.equal(classifyRoute('DELETE', '/v1/topics/:name'), 'mutating');
  t.equal(classifyRoute('POST', '/v1/topics/:topic/partitions/:partition/records'), 'mutating', 'produce');
  t.equal(classifyRoute('POST', '/v1/groups/:group/offsets'), 'mutating', 'a commit');
  t.equal(classifyRoute('PUT', '/nowhere'), 'mutating', 'an unknown method changes something');
  t.equal(classifyRoute('GET', '/v1/topics/:topic/partitions/:partition/records'), 'read');
  t.equal(classifyRoute('HEAD', '/v1/brokers'), 'read');
  t.equal(classifyRoute('GET', '/v1/brokers?x=/internal/'), 'read', 'the query string does not count');
  t.equal(classifyRoute('GET', '/healthz'), 'probe');
  t.equal(classifyRoute('GET', '/readyz?verbose=1'), 'probe');
  t.equal(classifyRoute('POST', '/healthz'), 'mutating', 'only GET of a probe is a probe');
  for (const reads of ['open', 'token'] as const) {
    t.ok(needsToken('internal', reads));
    t.ok(needsToken('mutating', reads));
    t.notOk(needsToken('probe', reads));
  }
  t.notOk(needsToken('read', 'open'));
  t.ok(needsToken('read', 'token'));
  t.end();
});

void t.test('the token check', (t) => {
  const check = new TokenCheck('s3cret-token');
  t.doesNotThrow(() => { check.check('Bearer s3cret-token'); });
  t.doesNotThrow(() => { check.check('bearer s3cret-token'); }, 'the scheme is case-insensitive (RFC 7235)');
  const refused: Array<string | string[] | undefined> = [
    undefined, '', 'Bearer', 'Bearer ', 'Bearer s3cret-tokeN', 'Bearer s3cret-token2', 'Bearer s3cret', 'Bearer x',
    's3cret-token', 'Basic s3cret-token', 'Bearer s3cret-token extra', ['Bearer s3cret-token', 'Bearer s3cret-token'],
  ];
  for (const header of refused) {
    t.throws(() => { check.check(header); }, { code: 'AUTHENTICATION_FAILED', status: 401 }, JSON.stringify(header));
  }
  try {
    check.check('Bearer s3cret-tokeX');
  } catch (error) {
    t.notMatch((error as Error).message, 's3cret', 'the error names neither token');
  }
  t.same(authorizationHeader('abc'), { authorization: 'Bearer abc' });
  t.same(authorizationHeader(undefined), {});
  t.end();
});

void t.test('what a token may be', (t) => {
  t.equal(tokenProblem('a-b_c.d~e+f/g=='), null);
  t.match(tokenProblem(''), /empty/);
  t.match(tokenProblem('two words'), /visible ASCII/);
  t.match(tokenProblem('caf\u00e9'), /visible ASCII/);
  t.equal(tokenProblem('x'.repeat(TOKEN_BYTES_MAX)), null);
  t.match(tokenProblem('x'.repeat(TOKEN_BYTES_MAX + 1)), /longer/);
  t.end();
});

void t.test('reading credential files', async (t) => {
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-auth-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  t.equal(await readTokenFile(await file('ok', '\n  tok-1234 \r\n'), '--auth-token-file'), 'tok-1234', 'trimmed');
  await t.rejects(readTokenFile(await file('empty', ' \n'), '--auth-token-file'), { code: 'INVALID_CONFIG', message: /--auth-token-file: the token in .* is empty/ });
  await t.rejects(readTokenFile(await file('big', 'x'.repeat(64 * 1024)), '--auth-token-file'), { code: 'INVALID_CONFIG', message: /larger than/ });
  await t.rejects(readTokenFile(await file('long', 'x'.repeat(TOKEN_BYTES_MAX + 1)), '--token-file'), { code: 'INVALID_CONFIG', message: /--token-file: .*longer than/ });
  await t.rejects(readTokenFile(await file('spaces', 'one two'), '--token-file'), { code: 'INVALID_CONFIG', message: /visible ASCII/ });
  await t.rejects(readTokenFile(join(dir, 'missing'), '--token-file'), { code: 'INVALID_CONFIG', message: /--token-file: cannot read .*missing: ENOENT/ });
  await t.rejects(readTokenFile(dir, '--token-file'), { code: 'INVALID_CONFIG', message: /EISDIR/ });
  await t.rejects(readPemFile(await file('notpem', 'hello'), '--tls-cert'), { code: 'INVALID_CONFIG', message: /--tls-cert: .* holds no PEM block/ });
  t.ok((await readPemFile(await file('pem', '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n'), '--tls-ca')).length > 0);
});
