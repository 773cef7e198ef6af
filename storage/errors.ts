// Every expected failure in driftwood is a DriftwoodError with a stable code from this one
// table, in Kafka's vocabulary, each with the HTTP status it maps to (fastify keeps its
// error codes the same way). It lives at the bottom layer so every layer can raise it.
// Programmer errors are not here: they are assertions and crash the process.

export const errorCodes = {
  // Input
  INVALID_REQUEST: { status: 400, message: 'The request is malformed' },
  CORRUPT_MESSAGE: { status: 400, message: 'The record batch is corrupt' },
  MESSAGE_TOO_LARGE: { status: 413, message: 'The record batch is larger than the limit' },
  // Kafka's name for a produce that carries more than the broker takes in one go; here: more
  // records in one batch than RECORDS_PER_BATCH_MAX.
  RECORD_LIST_TOO_LARGE: { status: 413, message: 'The record batch holds more records than the limit' },
  // HTTP-level refusals of a request before any route sees it (fastify's own errors, mapped).
  REQUEST_TOO_LARGE: { status: 413, message: 'The request body is larger than the limit of the route' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not one the route takes' },
  UNKNOWN_ROUTE: { status: 404, message: 'No such route' },
  INVALID_CONFIG: { status: 400, message: 'A configuration value is invalid' },
  // A Kafka-protocol request in an API or version driftwood does not speak.
  UNSUPPORTED_VERSION: { status: 400, message: 'The API version is not supported' },
  // Offsets and topics
  OFFSET_OUT_OF_RANGE: { status: 416, message: 'The offset is outside the log' },
  OFFSET_NOT_AVAILABLE: { status: 503, message: 'The new leader has not yet committed in its epoch, so its high watermark may be behind' },
  UNKNOWN_TOPIC_OR_PARTITION: { status: 404, message: 'No such topic or partition' },
  TOPIC_ALREADY_EXISTS: { status: 409, message: 'The topic exists already' },
  // Storage
  KAFKA_STORAGE_ERROR: { status: 503, message: 'The log directory failed; the log is offline' },
  NOT_FOUND: { status: 404, message: 'No such file' },
  LOG_CLOSED: { status: 503, message: 'The log is closed' },
  INCONSISTENT_CLUSTER_ID: { status: 409, message: 'The data belongs to another cluster or node' },
  // Cluster
  NOT_LEADER_OR_FOLLOWER: { status: 421, message: 'This broker does not lead the partition' },
  NOT_CONTROLLER: { status: 421, message: 'This broker is not the controller' },
  FENCED_LEADER_EPOCH: { status: 409, message: 'The leader epoch is older than the one the log has' },
  UNKNOWN_LEADER_EPOCH: { status: 503, message: 'The leader epoch is newer than this broker knows yet' },
  NOT_ENOUGH_REPLICAS: { status: 503, message: 'Fewer in-sync replicas than min.insync.replicas' },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { status: 503, message: 'Written, but the in-sync replicas fell below min.insync.replicas before it committed; it may or may not be kept' },
  REQUEST_TIMED_OUT: { status: 504, message: 'The request timed out' },
  UNAUTHORIZED: { status: 401, message: 'Not authorized' },
  // Kafka's SASL_AUTHENTICATION_FAILED: who is asking could not be established (no bearer
  // token, or the wrong one), as opposed to UNAUTHORIZED for a known caller without the right.
  AUTHENTICATION_FAILED: { status: 401, message: 'Authentication failed: a valid bearer token is required' },
  // Controller (cluster metadata)
  INVALID_TOPIC_EXCEPTION: { status: 400, message: 'The topic name is invalid' },
  INVALID_PARTITIONS: { status: 400, message: 'The number of partitions is invalid' },
  INVALID_REPLICATION_FACTOR: { status: 400, message: 'The replication factor is invalid' },
  INVALID_REPLICA_ASSIGNMENT: { status: 400, message: 'The replica assignment is invalid' },
  NO_REASSIGNMENT_IN_PROGRESS: { status: 409, message: 'The partition is not being reassigned' },
  STALE_BROKER_EPOCH: { status: 409, message: 'The broker epoch is not the current one' },
  INVALID_UPDATE_VERSION: { status: 409, message: 'The partition epoch is stale' },
  INELIGIBLE_REPLICA: { status: 409, message: 'A replica added to the ISR is fenced or unknown' },
  BROKER_ID_NOT_REGISTERED: { status: 404, message: 'No such broker is registered' },
  INCONSISTENT_VOTER_SET: { status: 409, message: 'The node id is a voter of the metadata quorum; a joining broker needs an id of its own' },
  // Idempotent producers
  UNKNOWN_PRODUCER_ID: { status: 409, message: 'The partition has no state for this producer id (expired, or never seen)' },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { status: 409, message: 'The batch sequence number does not follow the last one written for this producer' },
  INVALID_PRODUCER_EPOCH: { status: 409, message: 'The producer epoch is older than the one the partition has (a newer producer with this id exists)' },
  // Consumer groups
  INVALID_GROUP_ID: { status: 400, message: 'The group id is invalid' },
  NOT_COORDINATOR: { status: 421, message: 'This broker is not the coordinator of the group' },
  COORDINATOR_NOT_AVAILABLE: { status: 503, message: 'The group coordinator is not available yet; retry' },
  COORDINATOR_LOAD_IN_PROGRESS: { status: 503, message: 'The group coordinator is loading the group; retry' },
  GROUP_ID_NOT_FOUND: { status: 404, message: 'No such group' },
  UNKNOWN_MEMBER_ID: { status: 404, message: 'The group has no such member; join again' },
  FENCED_MEMBER_EPOCH: { status: 409, message: 'The member epoch is not the current one; join again' },
  STALE_MEMBER_EPOCH: { status: 409, message: 'The member does not own the partition in this epoch' },
  GROUP_MAX_SIZE_REACHED: { status: 409, message: 'The group has as many members as it may' },
  // Kafka's classic group protocol (JoinGroup/SyncGroup/Heartbeat)
  MEMBER_ID_REQUIRED: { status: 409, message: 'Join again with the member id given' },
  REBALANCE_IN_PROGRESS: { status: 409, message: 'The group is rebalancing; join again' },
  ILLEGAL_GENERATION: { status: 409, message: 'The generation is not the group\'s current one' },
  INCONSISTENT_GROUP_PROTOCOL: { status: 409, message: 'The group protocol is not shared with the group\'s members' },
  INVALID_SESSION_TIMEOUT: { status: 400, message: 'The session timeout is outside the allowed range' },
  NON_EMPTY_GROUP: { status: 409, message: 'The group has members; stop them first' },
  COMMIT_OFFSET_REGRESSION: { status: 409, message: 'The offset is below the committed one; reset the group offsets to move back' },
  // Kafka's UNKNOWN_SERVER_ERROR: an error nobody expected, which is a bug to fix (the only
  // source of a 500).
  UNKNOWN_SERVER_ERROR: { status: 500, message: 'An unexpected error on the server' },
  // Client side
  BUFFER_EXHAUSTED: { status: 503, message: 'The producer buffer is full' },
  CLIENT_CLOSED: { status: 503, message: 'The client is closed' },
  NETWORK_EXCEPTION: { status: 503, message: 'The broker could not be reached or closed the connection before answering' },
  NO_OFFSET_FOR_PARTITION: { status: 409, message: 'The partition has no committed offset and the reset policy is none' },
  ILLEGAL_STATE: { status: 409, message: 'The client is not in a state that allows this call' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCodes;

export class DriftwoodError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields a client can act on (the leader to retry at, the valid offset range). */
  readonly hints: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, detail?: string, hints: Record<string, unknown> = {}) {
    const base = errorCodes[code];
    super(detail === undefined ? base.message : `${base.message}: ${detail}`);
    this.name = 'DriftwoodError';
    this.code = code;
    this.status = base.status;
    this.hints = hints;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.hints };
  }
}

export function isDriftwoodError(error: unknown, code?: ErrorCode): error is DriftwoodError {
  return error instanceof DriftwoodError && (code === undefined || error.code === code);
}
