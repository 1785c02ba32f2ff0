import { expect } from 'chai';
import type { Storage } from '../storage/storage.js';
import { createFederationAccess } from './access.js';

/** Current state with one m.room.server_acl in '!acl:x' and none elsewhere. */
const storage = {
  state: {
    async currentStateEventId(roomId: string, type: string) {
      return roomId === '!acl:x' && type === 'm.room.server_acl' ? '$acl' : null;
    },
  },
  events: {
    async getEvent(eventId: string) {
      return eventId === '$acl'
        ? { pdu: { content: { allow: ['*'], deny: ['bad.example', '*.bad.example'] } } }
        : null;
    },
  },
} as unknown as Pick<Storage, 'state' | 'events'>;

describe('federation access (config lists and room ACLs)', () => {
  it('allows everyone but the deny list when no allow list is configured', () => {
    const access = createFederationAccess({
      allowlist: [],
      denylist: ['evil.example', '*.evil.example'],
      storage,
    });
    expect(access.isServerAllowed('good.example')).to.equal(true);
    expect(access.isServerAllowed('evil.example:8448')).to.equal(false);
    expect(access.isServerAllowed('a.evil.example')).to.equal(false);
  });

  it('allows only the allow list when one is configured, deny still winning', () => {
    const access = createFederationAccess({
      allowlist: ['*.friends.example', '127.0.0.1:*'],
      denylist: ['ex.friends.example'],
      storage,
    });
    expect(access.isServerAllowed('a.friends.example')).to.equal(true);
    expect(access.isServerAllowed('127.0.0.1:8448')).to.equal(true);
    expect(access.isServerAllowed('ex.friends.example')).to.equal(false);
    expect(access.isServerAllowed('stranger.example')).to.equal(false);
  });

  it("applies a room's m.room.server_acl; a room without one admits everyone", async () => {
    const access = createFederationAccess({ allowlist: [], denylist: [], storage });
    expect(await access.isAllowedInRoom('ok.example', '!acl:x')).to.equal(true);
    expect(await access.isAllowedInRoom('x.bad.example:443', '!acl:x')).to.equal(false);
    expect(await access.isAllowedInRoom('bad.example', '!other:x')).to.equal(true);
  });
});
