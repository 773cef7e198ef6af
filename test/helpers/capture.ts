// Captures what a command writes, for CLI tests.
export interface Captured {
  out: string[];
  err: string[];
  io: { stdout: (text: string) => void; stderr: (text: string) => void };
}

export function capture(): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (text) => { out.push(text); }, stderr: (text) => { err.push(text); } } };
}
