import t from 'tap';
import { parseListen, parsePeers, peerUrl } from '../src/peers.js';

void t.test('peers lists parse and bad ones are INVALID_CONFIG', (t) => {
  const peers = parsePeers('2@127.0.0.1:9092, 1@localhost:9091,3@127.0.0.3:9093');
  t.same(peers.map((p) => p.id), [1, 2, 3]);
  t.equal(peerUrl(peers[0]!), 'http://localhost:9091');
  for (const bad of ['', '1@a', 'x@a:1', '0@a:1', '1@a:70000', '1@a:1,1@b:2', '1@a:1,2@a:1']) {
    t.throws(() => parsePeers(bad), { code: 'INVALID_CONFIG' }, bad);
  }
  t.same(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.throws(() => parseListen('nohost'), { code: 'INVALID_CONFIG' });
  t.end();
});
