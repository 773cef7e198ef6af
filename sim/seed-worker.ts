// A worker thread that runs simulator seeds for `driftwood sim --workers N`: it gets the kind
// and options once, then one seed per message, and answers each with the seed's result.
// Seeds are independent and each replays the same whatever thread runs it.
import { parentPort, workerData } from 'node:worker_threads';
import { runClusterSim, type ClusterSimOptions } from './cluster-sim.js';
import { runRaftSim, type RaftSimOptions } from './raft-sim.js';

export type SeedWork =
  | { readonly kind: 'raft'; readonly options: Omit<RaftSimOptions, 'seed'> }
  | { readonly kind: 'cluster'; readonly options: Omit<ClusterSimOptions, 'seed' | 'trace'> };

const port = parentPort;
if (port !== null) {
  const work = workerData as SeedWork;
  port.on('message', (seed: number) => {
    const run = work.kind === 'raft' ? runRaftSim({ seed, ...work.options }) : runClusterSim({ seed, ...work.options });
    run.then((result) => { port.postMessage(result); }, (error: unknown) => { throw error; });
  });
}
