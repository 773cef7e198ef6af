// Finding a group's coordinator and talking to it. The coordinator is the leader of one
// partition of __consumer_offsets, so it moves when that leadership moves: an answer of
// NOT_COORDINATOR (which names the new one), COORDINATOR_NOT_AVAILABLE or
// COORDINATOR_LOAD_IN_PROGRESS, a coordinator that cannot be reached, or NOT_CONTROLLER (what
// a node answers to everything while it starts, as after a kill -9 and restart), means look
// it up again and retry after a backoff.
import { DriftwoodError, isDriftwoodError, type ErrorCode } from '../../storage/errors.js';
import { normalizeAddress, type ResolvedClientOptions } from './options.js';
import type { Connections, HttpRequest } from './connections.js';
import type { Metadata } from './metadata.js';
import { retryUntil, type Timers } from './retry.js';

const COORDINATOR_MOVED_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'NETWORK_EXCEPTION',
  'REQUEST_TIMED_OUT',
  'NOT_CONTROLLER',
]);

/** Whether an answer means "find the coordinator again and retry". */
export function isCoordinatorMoved(error: unknown): boolean {
  return isDriftwoodError(error) && COORDINATOR_MOVED_CODES.has(error.code);
}

export class GroupCoordinator {
  private address: string | null = null;
  private lookup: Promise<string> | null = null;

  constructor(
    readonly groupId: string,
    private readonly connections: Connections,
    private readonly metadata: Metadata,
    private readonly options: ResolvedClientOptions,
    private readonly timers: Timers,
  ) {}

  get path(): string {
    return `/v1/groups/${encodeURIComponent(this.groupId)}`;
  }

  /** Forgets the coordinator; `hint` (an answer's coordinatorAddress) is where to go next. */
  invalidate(error?: unknown): void {
    const hint = isDriftwoodError(error) ? error.hints.coordinatorAddress : undefined;
    this.address = null;
    if (typeof hint === 'string' && hint.length > 0) {
      try {
        this.address = normalizeAddress(hint);
      } catch {
        // an address we cannot use: look the coordinator up instead
      }
    }
  }

  /**
   * The coordinator's address, looked up when not known (one attempt): at the node that
   * answered last, then at the others while a node cannot answer it (it is starting, its
   * metadata does not name the coordinator yet, or it cannot be reached).
   */
  async find(): Promise<string> {
    if (this.address !== null) return this.address;
    this.lookup ??= this.metadata.anyBroker(async (address) => {
      const answer = await this.connections.json<{ coordinatorAddress?: unknown } | null>(address, { method: 'GET', path: `${this.path}/coordinator`, timeoutMs: this.options.requestTimeoutMs });
      if (typeof answer?.coordinatorAddress !== 'string') throw new DriftwoodError('COORDINATOR_NOT_AVAILABLE', `the coordinator of ${this.groupId} is not known yet`);
      return normalizeAddress(answer.coordinatorAddress);
    }, isCoordinatorMoved).finally(() => { this.lookup = null; });
    const found = await this.lookup;
    this.address = found;
    return found;
  }

  /** One JSON request to the coordinator, found first if needed; no retry. */
  async requestOnce<T>(request: HttpRequest): Promise<T> {
    const address = await this.find();
    try {
      return await this.connections.json<T>(address, request);
    } catch (error) {
      if (isCoordinatorMoved(error)) this.invalidate(error);
      throw error;
    }
  }

  /**
   * A JSON request to the coordinator, retried with backoff while the coordinator moves or is
   * not ready, until `deadlineMs` (monotonic); then the last error. Other errors at once.
   */
  request<T>(request: Omit<HttpRequest, 'timeoutMs'>, deadlineMs: number): Promise<T> {
    return retryUntil(() => this.requestOnce<T>({ ...request, timeoutMs: this.options.requestTimeoutMs }), isCoordinatorMoved, deadlineMs, this.options, this.timers);
  }
}
