// `driftwood cluster [describe]`: the cluster id, the active controller and every broker,
// alive or fenced (as rpk cluster info). `driftwood cluster run` is the local
// cluster of cluster.ts.
import { parseArgs } from 'node:util';
import type { ClusterDescription } from '../client/admin.js';
import { withAdmin } from './admin.js';
import { clientFlags, fields, positionals, printJson, table, type CommandIO } from './io.js';
import { clientTargetFrom } from './security-flags.js';

export const CLUSTER_DESCRIBE_USAGE = `usage: driftwood cluster [describe] [--bootstrap HOST:PORT,...] [--json]
      the cluster id, the active controller and the brokers (alive or fenced)
       driftwood cluster health [--bootstrap HOST:PORT,...] [--json]
      exit 0 when every partition has a leader and a full ISR, else 1 listing those that do not
       driftwood cluster run [--nodes 3] [--data data] [--base-port 9091]
      a local cluster in the foreground (what make cluster runs); Ctrl-C stops it

  --bootstrap   any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --token-file  a file holding the cluster's bearer token (default $DRIFTWOOD_TOKEN_FILE)
  --tls-ca      the CA that signed the nodes' certificates: connect over TLS (default
                $DRIFTWOOD_TLS_CA; --tls for TLS with the system's CAs)
  --json        one JSON document on stdout instead of text`;

export async function runClusterDescribe(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${CLUSTER_DESCRIBE_USAGE}\n`);
    return;
  }
  positionals(given, [], 'cluster describe');
  const info = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.describeCluster());
  if (values.json) {
    printJson(io, info);
    return;
  }
  io.stdout(formatCluster(info));
}

export function formatCluster(info: ClusterDescription): string {
  const alive = info.brokers.filter((b) => b.state === 'alive').length;
  const header = fields([
    ['cluster id', info.clusterId ?? '(not yet known)'],
    ['controller', info.controller > 0 ? String(info.controller) : 'none (election in progress)'],
    ['brokers', `${info.brokers.length} (${alive} alive, ${info.brokers.length - alive} fenced)`],
  ]);
  const sorted = [...info.brokers].sort((a, b) => a.id - b.id);
  const rows = sorted.map((b) => [String(b.id), b.address, b.decommissioned ? `${b.state}, decommissioned` : b.state, b.id === info.controller ? 'yes' : '']);
  return `${header}\n${table(['ID', 'ADDRESS', 'STATE', 'CONTROLLER'], rows)}`;
}
