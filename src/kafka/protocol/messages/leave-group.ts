// LeaveGroup (key 13), LeaveGroupRequest.json / LeaveGroupResponse.json, v0–v5. From v3 a
// request names several members (static membership, KIP-345).
import type { MessageSpec } from '../spec.js';

export const leaveGroupRequest: MessageSpec = {
  apiKey: 13, type: 'request', name: 'LeaveGroupRequest', validVersions: '0-5', flexibleVersions: '4+',
  fields: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0-2' },
    { name: 'members', type: '[]MemberIdentity', versions: '3+', fields: [
      { name: 'memberId', type: 'string', versions: '3+' },
      { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
      { name: 'reason', type: 'string', versions: '5+', nullableVersions: '5+', default: null },
    ] },
  ],
};

export const leaveGroupResponse: MessageSpec = {
  apiKey: 13, type: 'response', name: 'LeaveGroupResponse', validVersions: '0-5', flexibleVersions: '4+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'members', type: '[]MemberResponse', versions: '3+', fields: [
      { name: 'memberId', type: 'string', versions: '3+' },
      { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+' },
      { name: 'errorCode', type: 'int16', versions: '3+' },
    ] },
  ],
};
