// The CLI's use of the client library's Admin: one client per command, closed whatever
// happens, with a request timeout that suits a person waiting at a terminal.
import { DriftwoodError } from '../../storage/errors.js';
import { Admin } from '../client/admin.js';
import type { ClientTarget } from './security-flags.js';

/**
 * How long one admin call may take, retries included (the library's default is a minute): a
 * freshly started cluster elects its controller within a few seconds, and a person who gave
 * the wrong address should hear so soon.
 */
export const ADMIN_API_TIMEOUT_MS = 10_000;

export async function withAdmin<T>(target: ClientTarget, call: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ ...target, clientId: 'driftwood-cli', requestTimeoutMs: ADMIN_API_TIMEOUT_MS, apiTimeoutMs: ADMIN_API_TIMEOUT_MS });
  try {
    return await call(admin);
  } finally {
    await admin.close();
  }
}

/**
 * The number of partitions of `topic`, or UNKNOWN_TOPIC_OR_PARTITION naming the command that
 * creates it. From the topic list: describeTopic would also ask every leader for its offsets.
 */
export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const found = (await admin.listTopics()).find((t) => t.name === topic);
  if (found === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} does not exist (driftwood topics create ${topic})`);
  return found.partitions;
}
