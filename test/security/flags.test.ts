// Bad security flags are usage errors: exit code 2 and one line naming the flag, before a node
// starts or a client connects, and never the token itself.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { killAll, requireBuild, startDriftwood } from '../helpers/processes.js';

void t.test('bad security flags', { timeout: 60_000 }, async (t) => {
  requireBuild();
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-security-flags-'));
  const processes = new Set<ChildProcess>();
  t.teardown(async () => {
    killAll(processes);
    await rm(dir, { recursive: true, force: true });
  });
  const token = join(dir, 'token');
  await writeFile(token, 'the-secret-token\n');
  const empty = join(dir, 'empty');
  await writeFile(empty, '\n\n');
  const notPem = join(dir, 'not.pem');
  await writeFile(notPem, 'the-secret-token');
  const node = ['start', '--id', '1', '--peers', '1@127.0.0.1:1', '--data', join(dir, 'data')];
  const cases: Array<[string[], RegExp]> = [
    [[...node, '--auth-token-file', join(dir, 'missing')], /--auth-token-file: cannot read .*missing: ENOENT/],
    [[...node, '--auth-token-file', empty], /--auth-token-file: the token in .* is empty/],
    [[...node, '--auth-reads', 'token'], /--auth-reads needs --auth-token-file/],
    [[...node, '--auth-token-file', token, '--auth-reads', 'sometimes'], /--auth-reads must be open or token/],
    [[...node, '--tls-cert', notPem], /--tls-cert and --tls-key go together/],
    [[...node, '--tls-key', notPem], /--tls-cert and --tls-key go together/],
    [[...node, '--tls-ca', notPem], /--tls-ca needs --tls-cert and --tls-key/],
    [[...node, '--tls-cert', notPem, '--tls-key', notPem], /--tls-cert: .* holds no PEM block/],
    [['quorum', '--id', '1', '--peers', '1@127.0.0.1:1', '--data', join(dir, 'q'), '--auth-token-file', empty], /--auth-token-file: the token in .* is empty/],
    [['topics', 'list', '--bootstrap', '127.0.0.1:1', '--token-file', join(dir, 'missing')], /--token-file: cannot read/],
    [['topics', 'list', '--bootstrap', '127.0.0.1:1', '--tls-ca', notPem], /--tls-ca: .* holds no PEM block/],
  ];
  // All at once: each is a process start, and none touches the others.
  const runs = await Promise.all(cases.map(async ([args]) => {
    const run = startDriftwood(args, processes);
    const code = await new Promise<number | null>((resolve) => run.child.once('exit', resolve));
    return { code, output: run.output.join('') };
  }));
  for (const [i, [args, message]] of cases.entries()) {
    const { code, output } = runs[i]!;
    t.equal(code, 2, `${args.slice(7).join(' ') || args.join(' ')}: exit code 2`);
    t.match(output, message);
    t.equal(output.trimEnd().split('\n').length, 1, 'one line');
    t.notMatch(output, 'the-secret-token', 'no secret in the message');
  }
});
