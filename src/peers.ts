// The shared peers list every node is started with: "1@127.0.0.1:9091,2@127.0.0.1:9092,...".
import { DriftwoodError } from '../storage/errors.js';

export interface Peer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/** A limit on cluster size for one peers list. */
export const PEERS_MAX = 64;

export function parsePeers(text: string): Peer[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  if (items.length === 0) throw new DriftwoodError('INVALID_CONFIG', 'the peers list is empty');
  if (items.length > PEERS_MAX) throw new DriftwoodError('INVALID_CONFIG', `more than ${PEERS_MAX} peers`);
  const peers = items.map(parsePeer);
  const ids = new Set(peers.map((peer) => peer.id));
  if (ids.size !== peers.length) throw new DriftwoodError('INVALID_CONFIG', `the peers list names an id twice: ${text}`);
  const addresses = new Set(peers.map((peer) => `${peer.host}:${peer.port}`));
  if (addresses.size !== peers.length) throw new DriftwoodError('INVALID_CONFIG', `the peers list names an address twice: ${text}`);
  return peers.sort((a, b) => a.id - b.id);
}

function parsePeer(item: string): Peer {
  const match = /^(\d+)@([^:@\s]+):(\d+)$/.exec(item);
  if (match === null) throw new DriftwoodError('INVALID_CONFIG', `a peer is ID@HOST:PORT, got '${item}'`);
  const id = Number(match[1]);
  const port = Number(match[3]);
  if (!Number.isSafeInteger(id) || id < 1) throw new DriftwoodError('INVALID_CONFIG', `peer id must be >= 1, got '${item}'`);
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new DriftwoodError('INVALID_CONFIG', `peer port must be 1-65535, got '${item}'`);
  return { id, host: match[2] ?? '', port };
}

export function parseListen(text: string): { host: string; port: number } {
  const match = /^([^:\s]+):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(port) || port < 0 || port > 65535) throw new DriftwoodError('INVALID_CONFIG', `--listen is HOST:PORT, got '${text}'`);
  return { host: match[1] ?? '', port };
}

/** The peer's origin URL; the scheme follows the cluster's TLS setting. */
export function peerUrl(peer: Peer, tls = false): string {
  return `${tls ? 'https' : 'http'}://${peer.host}:${peer.port}`;
}
