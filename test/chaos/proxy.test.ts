// The link proxy on loopback: it forwards both ways from the source node's own address; a cut
// destroys the open connections and holds new ones without an answer; the heal drops the
// held ones and forwards again.
import { createServer, connect, type Socket } from 'node:net';
import t from 'tap';
import { freePort } from '../../src/node-free-port.js';
import { LinkProxy } from '../../src/chaos/node-proxy.js';

/** Sends `text` on a new connection and resolves with what comes back within `waitMs` ('' for nothing), or 'closed'. */
function exchange(port: number, text: string, waitMs: number): Promise<{ socket: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.3', port }, () => {
      socket.write(text);
      const answer = new Promise<string>((done) => {
        let got = '';
        const timer = setTimeout(() => { done(got); }, waitMs);
        socket.on('data', (chunk: Buffer) => { got += chunk.toString(); if (got.length >= text.length) { clearTimeout(timer); done(got); } });
        socket.once('close', () => { clearTimeout(timer); done(got.length > 0 ? got : 'closed'); });
      });
      resolve({ socket, answer });
    });
    socket.once('error', reject);
  });
}

void t.test('cut and heal of one link', { timeout: 20_000 }, async (t) => {
  const peers: string[] = [];
  const echo = createServer((socket) => {
    peers.push(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  const targetPort = await freePort();
  await new Promise<void>((resolve) => { echo.listen(targetPort, '127.0.0.3', resolve); });
  const proxyPort = await freePort();
  const proxy = new LinkProxy({ listenHost: '127.0.0.3', listenPort: proxyPort, targetHost: '127.0.0.3', targetPort, localHost: '127.0.0.2' });
  await proxy.listen();
  t.teardown(async () => {
    await proxy.close();
    await new Promise<void>((resolve) => { echo.close(() => { resolve(); }); });
  });

  const open = await exchange(proxyPort, 'hello', 2000);
  t.equal(await open.answer, 'hello', 'forwarded both ways');
  t.same(peers, ['127.0.0.2'], 'the target sees the source node\'s own address');

  const closed = new Promise<void>((resolve) => open.socket.once('close', () => { resolve(); }));
  proxy.cut();
  t.ok(proxy.isCut);
  await closed;
  t.pass('the cut destroyed the open connection');

  const held = await exchange(proxyPort, 'during', 500);
  t.equal(await held.answer, '', 'a connection made during the cut gets no answer');
  t.equal(peers.length, 1, 'and never reaches the target');

  const heldClosed = new Promise<void>((resolve) => held.socket.once('close', () => { resolve(); }));
  proxy.heal();
  await heldClosed;
  t.pass('the heal destroyed the held connection');
  const after = await exchange(proxyPort, 'again', 2000);
  t.equal(await after.answer, 'again', 'forwarded again after the heal');
  after.socket.destroy();
  t.equal(proxy.forwarded, 2);
});
