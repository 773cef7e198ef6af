#!/usr/bin/env node
// The `driftwood` executable: runs the command line and exits with its code.
import { run } from './commands.js';

process.exitCode = await run(process.argv.slice(2), {
  stdout: (text) => { process.stdout.write(text); },
  stderr: (text) => { process.stderr.write(text); },
});
