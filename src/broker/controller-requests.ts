// What a broker asks the controller, as data: one tagged request per kind, one answer type
// per kind, and the one function that runs a request against the active controller. The
// broker runs it locally when its node leads the quorum and sends it through a
// ControllerChannel otherwise (HTTP/2 between processes, the simulated network in sim/).
import { DriftwoodError, errorCodes, type ErrorCode } from '../../storage/errors.js';
import type { AlterPartitionAnswer, AlterPartitionsRequest, CreateTopicRequest, ProducerIdBlock, RegisterBrokerRequest, ReplicaStatusRequest } from '../controller/commands.js';
import type { AlterReassignmentsRequest, Controller, HeartbeatRequest } from '../controller/controller.js';
import type { PlannedMove } from '../controller/rebalance.js';
import type { TopicState } from '../controller/image.js';

export interface BrokerEpochRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

/**
 * observer: the node joins as a non-voting member of the metadata quorum (its id is not in its
 * peers list). The controller's node refuses it when the id is one of its voters: two nodes
 * with one id would take each other's place.
 */
export type RegisterRequest = RegisterBrokerRequest & { readonly observer?: boolean };

interface Requests {
  register: RegisterRequest;
  heartbeat: HeartbeatRequest;
  shutdown: BrokerEpochRequest;
  'alter-partitions': AlterPartitionsRequest;
  'replica-status': ReplicaStatusRequest;
  'alter-reassignments': AlterReassignmentsRequest;
  rebalance: { readonly dryRun: boolean; readonly throttleBytesPerSec?: number };
  'decommission-broker': { readonly brokerId: number; readonly dryRun: boolean; readonly throttleBytesPerSec?: number };
  'create-topic': CreateTopicRequest;
  'delete-topic': { readonly name: string };
  'elect-preferred-leaders': Readonly<Record<string, never>>;
  'allocate-producer-ids': BrokerEpochRequest;
}

export interface ControllerAnswers {
  register: { brokerEpoch: number };
  heartbeat: { fenced: boolean };
  shutdown: { ok: true };
  'alter-partitions': { partitions: AlterPartitionAnswer[] };
  'replica-status': { ok: true };
  'alter-reassignments': { ok: true };
  rebalance: { moves: PlannedMove[] };
  'decommission-broker': { moves: PlannedMove[] };
  'create-topic': TopicState;
  'delete-topic': { ok: true };
  'elect-preferred-leaders': { elected: number };
  'allocate-producer-ids': ProducerIdBlock;
}

export type ControllerRequestKind = keyof Requests;
export type ControllerRequest<K extends ControllerRequestKind = ControllerRequestKind> = K extends ControllerRequestKind ? { readonly kind: K; readonly body: Requests[K] } : never;

export const controllerRequestKinds: readonly ControllerRequestKind[] = ['register', 'heartbeat', 'shutdown', 'alter-partitions', 'replica-status', 'alter-reassignments', 'rebalance', 'decommission-broker', 'create-topic', 'delete-topic', 'elect-preferred-leaders', 'allocate-producer-ids'];

/** The port a broker uses to reach the controller on another node. */
export interface ControllerChannel {
  /** Resolves with the controller's answer or rejects with its DriftwoodError (REQUEST_TIMED_OUT when it does not answer). */
  send<K extends ControllerRequestKind>(to: number, request: ControllerRequest<K>): Promise<ControllerAnswers[K]>;
}

/** Runs a request on this node's controller; NOT_CONTROLLER when it is not active. */
export async function handleControllerRequest<K extends ControllerRequestKind>(controller: Controller, request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
  if (!controller.isActive) throw new DriftwoodError('NOT_CONTROLLER', 'this node is not the controller');
  return (await dispatch(controller, request)) as ControllerAnswers[K];
}

async function dispatch(controller: Controller, request: ControllerRequest): Promise<ControllerAnswers[ControllerRequestKind]> {
  switch (request.kind) {
    case 'register': return controller.registerBroker(request.body);
    case 'heartbeat': return controller.heartbeat(request.body);
    case 'shutdown': await controller.controlledShutdown(request.body); return { ok: true };
    case 'alter-partitions': return { partitions: await controller.alterPartitions(request.body) };
    case 'replica-status': await controller.alterReplicaStatus(request.body); return { ok: true };
    case 'alter-reassignments': await controller.alterReassignments(request.body); return { ok: true };
    case 'rebalance': return controller.rebalance(request.body);
    case 'decommission-broker': return controller.decommissionBroker(request.body);
    case 'create-topic': return controller.createTopic(request.body);
    case 'delete-topic': await controller.deleteTopic(request.body.name); return { ok: true };
    case 'elect-preferred-leaders': return controller.electPreferredLeaders();
    case 'allocate-producer-ids': return controller.allocateProducerIds(request.body);
  }
}

/** Turns an error answer ({error, message, ...hints}) back into a DriftwoodError; unknown codes become REQUEST_TIMED_OUT (the outcome is unknown). */
export function errorFromWire(answer: Readonly<Record<string, unknown>>, fallback: string): DriftwoodError {
  const { error, message, ...hints } = answer;
  const code = typeof error === 'string' && error in errorCodes ? (error as ErrorCode) : 'REQUEST_TIMED_OUT';
  // The sender's message already starts with the code's text; keep only its detail.
  const prefix = `${errorCodes[code].message}: `;
  const text = typeof message === 'string' ? message : fallback;
  return new DriftwoodError(code, text.startsWith(prefix) ? text.slice(prefix.length) : text, hints);
}
