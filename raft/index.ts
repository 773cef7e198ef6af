// The Raft consensus core: a pure state machine (no I/O). See raft.ts and README.md.
export { Raft, committedPerReadyMax } from './raft.js';
export type { ProgressStatus, RaftConfig, RaftState, RaftStatus } from './raft.js';
export type {
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  NodeIdOrNone,
  RaftBug,
  RaftRng,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from './types.js';
