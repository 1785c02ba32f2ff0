import { expect } from 'chai';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';

export function describeFilterStoreContract(makeStorage: StorageFactory): void {
  describe('FilterStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('stores a filter as given and gives it an opaque, URL-safe ID', async () => {
      const filter = {
        room: { timeline: { limit: 10, types: ['m.room.message'] }, state: { lazy_load_members: true } },
        event_fields: ['content.body', 'type'],
        'org.example.unknown': { '🧠': null },
      };
      const id = await storage().filters.createFilter(alice, filter);
      expect(id).to.match(/^[A-Za-z0-9._~-]+$/);
      expect(await storage().filters.getFilter(alice, id)).to.deep.equal(filter);
      expect(await storage().filters.getFilter(bob, id)).to.equal(null);
      expect(await storage().filters.getFilter(alice, `${id}x`)).to.equal(null);
    });

    it('gives distinct IDs per user, also to filters created concurrently', async () => {
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) => storage().filters.createFilter(alice, { n: i })),
      );
      expect(new Set(ids).size).to.equal(10);
      for (const [i, id] of ids.entries()) {
        expect(await storage().filters.getFilter(alice, id)).to.deep.equal({ n: i });
      }
      const bobs = await storage().filters.createFilter(bob, { bob: true });
      expect(await storage().filters.getFilter(bob, bobs)).to.deep.equal({ bob: true });
      expect(await storage().filters.getFilter(alice, ids[0]!)).to.deep.equal({ n: 0 });
    });
  });
}
