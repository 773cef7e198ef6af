// TLS material made at test time: a CA and a server certificate it signs for 127.0.0.1 and
// localhost, written as PEM files into a directory the test removes.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface TestCerts {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
}

export async function makeCerts(dir: string): Promise<TestCerts> {
  const notAfterDate = new Date(Date.now() + 24 * 3600 * 1000);
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'driftwood test CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  const files = { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'node.pem'), keyFile: join(dir, 'node-key.pem') };
  await writeFile(files.caFile, ca.cert);
  await writeFile(files.certFile, leaf.cert);
  await writeFile(files.keyFile, leaf.private, { mode: 0o600 });
  return { ...files, ca: ca.cert };
}
