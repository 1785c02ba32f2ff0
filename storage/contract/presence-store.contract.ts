import { expect } from 'chai';
import type { PresenceUpdate } from '../presence-store.js';
import type { StorageFactory } from './contract-harness.js';
import { useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const carol = '@carol:remote.example';

function update(userId: string, overrides: Partial<PresenceUpdate> = {}): PresenceUpdate {
  return {
    userId,
    state: 'online',
    statusMsg: null,
    lastActiveTs: 100,
    updatedTs: 100,
    currentlyActive: true,
    ...overrides,
  };
}

export function describePresenceStoreContract(makeStorage: StorageFactory): void {
  describe('PresenceStore', () => {
    const storage = useFreshStorage(makeStorage);
    const presence = () => storage().presence;

    it('stores a presence and reads it back with its stream position', async () => {
      expect(await presence().latestPresencePosition()).to.equal(0);
      expect(await presence().getPresence(alice)).to.equal(null);
      const position = await presence().setPresence(
        update(alice, {
          state: 'unavailable',
          statusMsg: 'lunch 🥪',
          currentlyActive: false,
          updatedTs: 150,
        }),
      );
      expect(position).to.be.greaterThan(0);
      expect(await presence().getPresence(alice)).to.deep.equal({
        userId: alice,
        state: 'unavailable',
        statusMsg: 'lunch 🥪',
        lastActiveTs: 100,
        updatedTs: 150,
        currentlyActive: false,
        streamPosition: position,
      });
      expect(await presence().latestPresencePosition()).to.equal(position);
    });

    it('moves every change, even of the same user, to a new and larger position', async () => {
      const first = await presence().setPresence(update(alice));
      const second = await presence().setPresence(update(bob));
      const third = await presence().setPresence(update(alice, { state: 'offline', currentlyActive: false }));
      expect(second).to.be.greaterThan(first);
      expect(third).to.be.greaterThan(second);
      expect(await presence().getPresence(alice)).to.include({ state: 'offline', streamPosition: third });
      expect(await presence().latestPresencePosition()).to.equal(third);
    });

    it('gives distinct increasing positions to changes made in the same tick', async () => {
      const users = Array.from({ length: 20 }, (_, i) => `@u${i}:example.org`);
      const positions = await Promise.all(users.map((userId) => presence().setPresence(update(userId))));
      expect(new Set(positions).size).to.equal(users.length);
      expect([...positions].sort((a, b) => a - b)).to.deep.equal(positions);
      expect(await presence().latestPresencePosition()).to.equal(positions.at(-1));
    });

    it('reads the presences of many users at once, skipping those without one', async () => {
      const users = Array.from({ length: 1200 }, (_, i) => `@many${i}:example.org`);
      for (const userId of users.filter((_, i) => i % 100 === 0))
        await presence().setPresence(update(userId));
      const found = await presence().getPresences([...users, '@none:example.org', users[0]!]);
      expect([...found.keys()].sort()).to.deep.equal(users.filter((_, i) => i % 100 === 0).sort());
      expect(found.get(users[1100]!)).to.include({ state: 'online' });
      expect((await presence().getPresences([])).size).to.equal(0);
    });

    it('lists changes after a position for the given users, oldest first, limited, latest state only', async () => {
      const start = await presence().latestPresencePosition();
      const pAlice = await presence().setPresence(update(alice));
      const pBob = await presence().setPresence(update(bob));
      const pCarol = await presence().setPresence(update(carol));
      const pAlice2 = await presence().setPresence(update(alice, { statusMsg: 'back' }));

      const changed = await presence().presenceChangedSince(start, [alice, bob, carol], 10);
      expect(changed.map((r) => [r.userId, r.streamPosition])).to.deep.equal([
        [bob, pBob],
        [carol, pCarol],
        [alice, pAlice2],
      ]);
      expect(changed[2]).to.include({ statusMsg: 'back' });
      expect(
        (await presence().presenceChangedSince(start, [alice, carol], 10)).map((r) => r.userId),
      ).to.deep.equal([carol, alice]);
      expect(
        (await presence().presenceChangedSince(start, [alice, bob, carol], 2)).map((r) => r.userId),
      ).to.deep.equal([bob, carol]);
      expect(
        (await presence().presenceChangedSince(pCarol, [alice, bob, carol], 10)).map((r) => r.userId),
      ).to.deep.equal([alice]);
      expect(await presence().presenceChangedSince(pAlice2, [alice, bob, carol], 10)).to.deep.equal([]);
      expect(await presence().presenceChangedSince(start, [], 10)).to.deep.equal([]);
      expect(await presence().presenceChangedSince(start, [alice], 0)).to.deep.equal([]);
      expect(pAlice).to.be.lessThan(pBob);
    });

    it('applies the limit across long user lists', async () => {
      const users = Array.from({ length: 1100 }, (_, i) => `@long${i}:example.org`);
      // Set the last users first so the oldest changes are not in the first slice of the list.
      const positions = new Map<string, number>();
      for (const userId of [...users].reverse().slice(0, 30)) {
        positions.set(userId, await presence().setPresence(update(userId)));
      }
      const changed = await presence().presenceChangedSince(0, users, 5);
      expect(changed.map((r) => r.userId)).to.deep.equal([...users].reverse().slice(0, 5));
    });

    it('lists users who are not offline', async () => {
      await presence().setPresence(update(alice));
      await presence().setPresence(update(bob, { state: 'unavailable' }));
      await presence().setPresence(update(carol, { state: 'offline' }));
      expect((await presence().listNotOffline()).map((r) => [r.userId, r.state])).to.deep.equal([
        [alice, 'online'],
        [bob, 'unavailable'],
      ]);
      await presence().setPresence(update(alice, { state: 'offline' }));
      expect((await presence().listNotOffline()).map((r) => r.userId)).to.deep.equal([bob]);
    });
  });
}
