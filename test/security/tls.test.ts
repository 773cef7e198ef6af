// Real `driftwood start` processes with --tls-cert/--tls-key/--tls-ca, the certificates made at
// test time (a CA and a leaf for 127.0.0.1 and localhost it signs): the cluster forms over
// HTTP/2 with TLS, the client library produces and consumes over TLS, ALPN gives HTTP/2 to
// those that offer it and HTTP/1.1 to the rest (node's https, curl), and a client that does not
// trust the CA, or speaks cleartext, gets nothing.
import { execFile, type ChildProcess, type ExecFileException } from 'node:child_process';
import https from 'node:https';
import http2 from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import t from 'tap';
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { makeCerts } from '../helpers/certs.js';
import { killAll, localCluster, startDriftwood, waitFor } from '../helpers/processes.js';

/** GET over HTTP/1.1 with node's https, offering only http/1.1 by ALPN. */
function getHttp1(port: number, path: string, ca?: string): Promise<{ status: number; httpVersion: string; alpn: unknown; body: string }> {
  const options: https.RequestOptions & ConnectionOptions = { host: '127.0.0.1', port, path, ALPNProtocols: ['http/1.1'], agent: false, ...(ca === undefined ? {} : { ca }), timeout: 5000 };
  return new Promise((resolve, reject) => {
    const request = https.get(options, (response) => {
      const alpn = 'alpnProtocol' in response.socket ? response.socket.alpnProtocol : undefined;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, httpVersion: response.httpVersion, alpn, body: Buffer.concat(chunks).toString('utf8') }); });
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** GET over HTTP/2 with node's http2 (ALPN h2). */
function getHttp2(port: number, path: string, ca: string): Promise<{ status: number; alpn: string | false | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
    session.on('error', reject);
    const stream = session.request({ ':path': path });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (headers) => { status = Number(headers[':status']); });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      resolve({ status, alpn: session.alpnProtocol, body: Buffer.concat(chunks).toString('utf8') });
      session.close();
    });
    stream.on('error', reject);
  });
}

async function readRecords(consumer: Consumer, count: number, timeoutMs: number): Promise<ConsumerRecord[]> {
  const records: ConsumerRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < deadline) records.push(...await consumer.poll(200));
  return records;
}

void t.test('a cluster over TLS', { timeout: 90_000 }, async (t) => {
  const cluster = await localCluster(t, 'tls');
  const certs = await makeCerts(cluster.dir);
  for (const id of [1, 2, 3]) cluster.start(id, 'start', ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--tls-ca', certs.caFile]);
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const [port1 = 0, port2 = 0, port3 = 0] = cluster.ports;
  const tls = { ca: certs.ca };
  const admin = new Admin({ bootstrap, tls, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());

  // Three alive brokers: Raft, registration and heartbeats crossed between nodes over TLS.
  await waitFor('three alive brokers', 30_000, async () => {
    const { brokers } = await admin.describeCluster();
    return brokers.length === 3 && brokers.every((b) => b.state === 'alive') ? true : undefined;
  });
  await admin.createTopic({ name: 'secure', partitions: 2, replicationFactor: 3, configs: { 'min.insync.replicas': 3 } });
  await waitFor('secure served with a full ISR', 15_000, async () => {
    const topic = await admin.describeTopic('secure');
    return topic.partitions.every((p) => p.highWatermark !== null && p.isr.length === 3) ? true : undefined;
  });
  const producer = new Producer({ bootstrap, tls, acks: 'all', lingerMs: 0 });
  t.teardown(() => producer.close());
  await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic: 'secure', partition: i % 2, value: `s${i}` })));
  t.pass('acks=all with min.insync.replicas=3: both followers fetched over TLS');
  const consumer = new Consumer({ bootstrap, tls, fetchMaxWaitMs: 100, autoOffsetReset: 'earliest' });
  t.teardown(() => consumer.close());
  consumer.assign([{ topic: 'secure', partition: 0 }, { topic: 'secure', partition: 1 }]);
  const read = await readRecords(consumer, 20, 15_000);
  t.same(read.map((r) => String(r.value)).sort(), Array.from({ length: 20 }, (_, i) => `s${i}`).sort(), 'the consumer reads every record over TLS');

  const h1 = await getHttp1(port2, '/v1/brokers', certs.ca);
  t.equal(h1.status, 200, 'an HTTP/1.1 client is answered');
  t.equal(h1.httpVersion, '1.1');
  t.equal(h1.alpn, 'http/1.1', 'ALPN chose http/1.1');
  t.equal((JSON.parse(h1.body) as unknown[]).length, 3);
  const h2 = await getHttp2(port3, '/v1/topics', certs.ca);
  t.equal(h2.status, 200, 'an HTTP/2 client is answered');
  t.equal(h2.alpn, 'h2', 'ALPN chose h2');

  await t.rejects(getHttp1(port1, '/v1/brokers'), { code: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/ }, 'a client without the CA refuses the certificate');
  const untrusting = new Admin({ bootstrap: [`127.0.0.1:${port1}`], tls: {}, requestTimeoutMs: 2000, apiTimeoutMs: 2000 });
  await t.rejects(untrusting.listTopics(), { code: 'NETWORK_EXCEPTION' }, 'the client library without the CA cannot connect');
  await untrusting.close();
  const cleartext = await fetch(`http://127.0.0.1:${port1}/v1/brokers`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (error: unknown) => error);
  t.type(cleartext, Error, 'cleartext HTTP to a TLS port gets no answer');

  const curl = await new Promise<{ error: ExecFileException | null; stdout: string }>((resolve) => {
    execFile('curl', ['--silent', '--show-error', '--max-time', '5', '--cacert', certs.caFile, `https://127.0.0.1:${port1}/v1/brokers`], (error, stdout) => { resolve({ error, stdout }); });
  });
  if (curl.error?.code === 'ENOENT') {
    t.comment('curl is not installed: its check is left out');
  } else {
    t.equal(curl.error, null, 'curl --cacert ca.pem https://... works');
    t.equal((JSON.parse(curl.stdout) as unknown[]).length, 3);
  }

  // The CLI connects over TLS with --tls-ca.
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  const run = startDriftwood(['topics', 'list', '--json', '--tls-ca', certs.caFile, '--bootstrap', `127.0.0.1:${port2}`], processes);
  const code = await new Promise<number | null>((resolve) => run.child.once('exit', resolve));
  t.equal(code, 0, `topics list --tls-ca: ${run.output.join('')}`);
  t.match(JSON.parse(run.output.join('')), [{ name: 'secure' }]);
});
