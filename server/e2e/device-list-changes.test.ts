import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import { TestRoom } from '../../storage/contract/test-events.js';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { deviceListChangesFor } from './device-list-changes.js';

const viewer = '@viewer:example.org';
const alice = '@alice:example.org';
const bob = '@bob:example.org';
const stranger = '@stranger:example.org';

describe('device_lists from the device-list stream', () => {
  let storage: SqliteStorage;
  let shared: TestRoom;
  let other: TestRoom;
  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    shared = new TestRoom('!shared:example.org');
    other = new TestRoom('!other:example.org');
  });
  afterEach(() => storage.close());

  const setMembership = async (room: TestRoom, userId: string, membership: string) => {
    const event = room.event({
      type: 'm.room.member',
      stateKey: userId,
      sender: userId,
      content: { membership },
    });
    await storage.events.persistEvent({
      event,
      currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', userId), event.eventId]]) },
    });
  };
  const position = () => storage.e2eKeys.latestDeviceListPosition();
  const changesSince = async (after: number) =>
    deviceListChangesFor(storage, viewer, after, await position());

  it('reports key changes of users sharing a room, and the viewer’s own, but not of strangers', async () => {
    await setMembership(shared, viewer, 'join');
    await setMembership(shared, alice, 'join');
    await setMembership(other, stranger, 'join');
    const start = await position();
    await storage.e2eKeys.recordDeviceListChange(alice);
    await storage.e2eKeys.recordDeviceListChange(stranger);
    await storage.e2eKeys.recordDeviceListChange(viewer);
    expect(await changesSince(start)).to.deep.equal({ changed: [alice, viewer].sort(), left: [] });
    expect(await deviceListChangesFor(storage, viewer, start, start)).to.deep.equal({
      changed: [],
      left: [],
    });
  });

  it('reports users who start sharing a room as changed, whoever joined', async () => {
    await setMembership(shared, viewer, 'join');
    await setMembership(other, alice, 'join');
    await setMembership(other, bob, 'join');
    const start = await position();
    await setMembership(shared, alice, 'join');
    expect(await changesSince(start)).to.deep.equal({ changed: [alice], left: [] });
    const afterAlice = await position();
    // The viewer joins Bob's room: Bob (and Alice, also there) now share a room with the viewer.
    await setMembership(other, viewer, 'join');
    expect(await changesSince(afterAlice)).to.deep.equal({ changed: [alice, bob].sort(), left: [] });
  });

  it('reports users who share no room any more as left, but not those still sharing another', async () => {
    await setMembership(shared, viewer, 'join');
    await setMembership(other, viewer, 'join');
    await setMembership(shared, alice, 'join');
    await setMembership(shared, bob, 'join');
    await setMembership(other, bob, 'join');
    const start = await position();
    await setMembership(shared, alice, 'leave');
    await setMembership(shared, bob, 'leave');
    expect(await changesSince(start)).to.deep.equal({ changed: [], left: [alice] });

    const afterLeaves = await position();
    await setMembership(other, viewer, 'leave');
    expect(await changesSince(afterLeaves)).to.deep.equal({ changed: [], left: [bob] });
  });

  it('answers for many candidates at once from the viewer’s rooms', async () => {
    await setMembership(shared, viewer, 'join');
    const members = Array.from({ length: 40 }, (_, i) => `@member${i}:example.org`);
    for (const member of members) await setMembership(shared, member, 'join');
    const strangers = Array.from({ length: 40 }, (_, i) => `@stranger${i}:example.org`);
    for (const s of strangers) await setMembership(other, s, 'join');
    const start = await position();
    for (const userId of [...members, ...strangers]) await storage.e2eKeys.recordDeviceListChange(userId);
    expect(await changesSince(start)).to.deep.equal({ changed: [...members].sort(), left: [] });
  });
});
