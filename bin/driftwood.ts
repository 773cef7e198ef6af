#!/usr/bin/env node
// The `driftwood` executable: the composition root that joins the broker's commands (src/cli)
// and the simulator's (sim/cli). It lives outside both because src/ must not import sim/.
import { run } from '../src/cli/commands.js';
import { runSimCommand, SimUsageError } from '../sim/cli.js';

// A reader that goes away (`driftwood consume t | head -1`) ends the output, not the process
// with an EPIPE stack trace: a running consume stops, commits and leaves its group.
const stdoutClosed = new AbortController();
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  stdoutClosed.abort();
});

const io = {
  stdout: (text: string) => { if (!stdoutClosed.signal.aborted) process.stdout.write(text); },
  outputClosed: stdoutClosed.signal,
  stderr: (text: string) => { process.stderr.write(text); },
  progressBar: process.stderr.isTTY,
};

async function main(argv: string[]): Promise<number> {
  if (argv[0] !== 'sim') return run(argv, io);
  try {
    return await runSimCommand(argv.slice(1), io);
  } catch (error) {
    const usage = error instanceof SimUsageError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
    io.stderr(`driftwood: ${error instanceof Error ? error.message : String(error)}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
