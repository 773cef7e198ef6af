// The broker side of the controller protocol: register (getting a broker epoch), then
// heartbeat every heartbeatMs; register again when the controller says the epoch is stale or
// unknown. A new controller hears from the broker at once (leaderChanged), so it can judge
// sessions after a short grace instead of a full session timeout. A heartbeat unanswered
// when the next one is due is given up, not waited for: the session is only a few beats long,
// and waiting out one lost request's timeout let it lapse (the cluster simulator showed
// brokers fenced over a single lost message).
import type { Clock, TimerHandle } from '../../storage/clock.js';
import { isDriftwoodError } from '../../storage/errors.js';
import type { ControllerAnswers, ControllerRequest, ControllerRequestKind } from './controller-requests.js';

export interface BrokerAgentConfig {
  readonly brokerId: number;
  readonly address: string;
  /** HOST:PORT of this broker's Kafka-protocol listener (absent: it has none). */
  readonly kafkaAddress?: string;
  /** Unique per process start: tells the controller a restarted broker from a duplicate one. */
  readonly incarnationId: string;
  readonly heartbeatMs: number;
  /** This node joined as a non-voting member of the metadata quorum (said at registration). */
  readonly observer?: boolean;
}

export interface BrokerAgentPorts {
  readonly clock: Clock;
  /** How far this node has applied the metadata log (the controller unfences only caught-up brokers). */
  readonly appliedIndex: () => number;
  readonly toController: <K extends ControllerRequestKind>(request: ControllerRequest<K>) => Promise<ControllerAnswers[K]>;
  /** The controller refused this broker for good (its id is a voter's): retrying cannot help, the node must stop. */
  readonly onRefused?: (error: unknown) => void;
}

export class BrokerAgent {
  private epochValue = 0;
  private fencedValue = true;
  private stopped = true;
  private timer: TimerHandle | null = null;
  private beating = false;
  private beatAgain = false;
  /** When the beat in flight was sent; an unanswered heartbeat is given up after heartbeatMs. */
  private beatSentMs = 0;
  /** When the last heartbeat answered "not fenced" was sent (monotonic), or null. */
  private unfencedSentMs: number | null = null;
  /** Bumped when the quorum leader changes: answers to requests sent before are ignored. */
  private generation = 0;

  constructor(private readonly config: BrokerAgentConfig, private readonly ports: BrokerAgentPorts) {}

  /** The epoch the controller gave this broker, 0 until registered. */
  get epoch(): number {
    return this.epochValue;
  }

  /** Whether the controller's last answer said this broker is fenced. */
  /**
   * When the last heartbeat the controller answered "not fenced" was sent. The controller
   * does not fence this broker (so does not move its leaderships for being silent) until a
   * session after that, which makes it a lease: the group coordinator serves only within it.
   */
  get unfencedSinceMs(): number | null {
    return this.unfencedSentMs;
  }

  get fenced(): boolean {
    return this.fencedValue;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  /** The quorum has a new leader: tell it about this broker now rather than at the next beat. */
  leaderChanged(): void {
    if (this.stopped) return;
    // A request to the old controller may hang until it times out; do not wait for it.
    this.generation += 1;
    this.beating = false;
    this.beatAgain = false;
    this.schedule(0);
  }

  /**
   * Stops heartbeating and asks the controller to move this broker's partition leaderships
   * away (KRaft's controlled shutdown). Best effort: resolves whatever the answer.
   */
  async shutdown(): Promise<void> {
    this.stop();
    if (this.epochValue === 0) return;
    await this.ports.toController({ kind: 'shutdown', body: { brokerId: this.config.brokerId, brokerEpoch: this.epochValue } }).catch(() => undefined);
  }

  private running(): boolean {
    return !this.stopped;
  }

  private schedule(delayMs: number): void {
    this.timer?.cancel();
    this.timer = this.ports.clock.setTimer(delayMs, () => {
      this.timer = null;
      void this.beat();
    });
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    const nowMs = this.ports.clock.monotonicMs();
    if (this.beating) {
      // Registration waits for its answer (the controller commits it); a heartbeat is given up.
      const lost = this.epochValue !== 0 && nowMs - this.beatSentMs >= this.config.heartbeatMs;
      if (!lost) {
        this.beatAgain = true;
        return;
      }
      this.generation += 1; // its answer, if one comes, is ignored
    }
    this.beating = true;
    this.beatAgain = false;
    this.beatSentMs = nowMs;
    const generation = this.generation;
    // The next beat is due heartbeatMs from now, answered or not.
    if (this.epochValue !== 0) this.schedule(this.config.heartbeatMs);
    try {
      if (this.epochValue === 0) await this.register(generation);
      else await this.heartbeat(generation);
    } catch (error) {
      if (isDriftwoodError(error, 'INCONSISTENT_VOTER_SET')) {
        this.stop();
        this.ports.onRefused?.(error);
        return;
      }
      const unknown = isDriftwoodError(error, 'STALE_BROKER_EPOCH') || isDriftwoodError(error, 'BROKER_ID_NOT_REGISTERED');
      if (unknown && generation === this.generation) this.epochValue = 0;
    }
    // Stopped, or overtaken by a beat to a new controller, while the request was out.
    if (generation !== this.generation) return;
    this.beating = false;
    if (!this.running()) return;
    const again = this.takeBeatAgain();
    if (this.timer === null || again) this.schedule(again ? 0 : this.config.heartbeatMs);
  }

  /** Whether a beat was asked for while this one was out (a method: the flag changes across awaits). */
  private takeBeatAgain(): boolean {
    const again = this.beatAgain;
    this.beatAgain = false;
    return again;
  }

  private async register(generation: number): Promise<void> {
    const { brokerEpoch } = await this.ports.toController({
      kind: 'register',
      body: {
        brokerId: this.config.brokerId,
        address: this.config.address,
        ...(this.config.kafkaAddress === undefined ? {} : { kafkaAddress: this.config.kafkaAddress }),
        incarnationId: this.config.incarnationId,
        ...(this.config.observer === true ? { observer: true } : {}),
      },
    });
    if (generation !== this.generation) return;
    this.epochValue = brokerEpoch;
    this.fencedValue = true;
  }

  private async heartbeat(generation: number): Promise<void> {
    const sentMs = this.ports.clock.monotonicMs();
    const { fenced } = await this.ports.toController({
      kind: 'heartbeat',
      body: { brokerId: this.config.brokerId, brokerEpoch: this.epochValue, appliedIndex: this.ports.appliedIndex() },
    });
    if (generation !== this.generation) return;
    this.fencedValue = fenced;
    if (!fenced) this.unfencedSentMs = sentMs;
  }
}
