// A free TCP port on 127.0.0.1, for tools that start local nodes (benchmarks, tests): the OS
// picks one for a listener that closes at once. Another process may take it in between; the
// callers start their nodes right after.
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => { resolve(port); });
    });
  });
}
