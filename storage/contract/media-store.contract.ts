import { expect } from 'chai';
import type { MediaContent } from '../media-store.js';
import { expectStorageError, type StorageFactory, useFreshStorage } from './contract-harness.js';

const alice = '@alice:example.org';
const bob = '@bob:example.org';
const server = 'example.org';
const blobA = { sha256: 'a'.repeat(64), size: 100, encrypted: false };
const blobB = { sha256: 'b'.repeat(64), size: 30, encrypted: true };

function content(mediaId: string, overrides: Partial<MediaContent> = {}): MediaContent {
  return {
    serverName: server,
    mediaId,
    userId: alice,
    createdTs: 1000,
    blob: blobA,
    contentType: 'image/png',
    uploadName: 'cat.png',
    originalSize: 120,
    authenticatedOnly: true,
    preview: { w: 2, h: 3 },
    ...overrides,
  };
}

export function describeMediaStoreContract(makeStorage: StorageFactory): void {
  describe('MediaStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('stores uploaded content and reads it back with its blob', async () => {
      expect(await storage().media.putMediaContent(content('m1'), 2000)).to.equal(true);
      const record = await storage().media.getMedia(server, 'm1');
      expect(record).to.deep.equal({
        serverName: server,
        mediaId: 'm1',
        userId: alice,
        createdTs: 1000,
        unusedExpiresTs: null,
        blob: blobA,
        contentType: 'image/png',
        uploadName: 'cat.png',
        originalSize: 120,
        authenticatedOnly: true,
        quarantined: false,
        preview: { w: 2, h: 3 },
        lastAccessTs: 2000,
      });
      expect(await storage().media.getMedia(server, 'nope')).to.equal(null);
      expect(await storage().media.getMedia('other.org', 'm1')).to.equal(null);
    });

    it('never overwrites content, but fills a reserved ID once', async () => {
      await storage().media.reserveMedia({
        serverName: server,
        mediaId: 'r1',
        userId: alice,
        createdTs: 1000,
        unusedExpiresTs: 5000,
        authenticatedOnly: false,
      });
      await expectStorageError(
        storage().media.reserveMedia({
          serverName: server,
          mediaId: 'r1',
          userId: bob,
          createdTs: 1000,
          unusedExpiresTs: 5000,
          authenticatedOnly: false,
        }),
        'CONFLICT',
      );
      const reserved = await storage().media.getMedia(server, 'r1');
      expect(reserved?.blob).to.equal(null);
      expect(reserved?.unusedExpiresTs).to.equal(5000);
      expect(await storage().media.pendingUploadCount(alice, 4000)).to.equal(1);
      expect(await storage().media.pendingUploadCount(alice, 5000)).to.equal(0);

      expect(await storage().media.putMediaContent(content('r1'), 3000)).to.equal(true);
      expect((await storage().media.getMedia(server, 'r1'))?.unusedExpiresTs).to.equal(null);
      expect(await storage().media.pendingUploadCount(alice, 4000)).to.equal(0);
      expect(await storage().media.putMediaContent(content('r1', { blob: blobB }), 3000)).to.equal(false);
      expect((await storage().media.getMedia(server, 'r1'))?.blob).to.deep.equal(blobA);
    });

    it("sums a user's uploads for the quota, and shares one blob between identical uploads", async () => {
      await storage().media.putMediaContent(content('m1'), 1);
      await storage().media.putMediaContent(content('m2'), 1);
      await storage().media.putMediaContent(content('m3', { blob: blobB }), 1);
      await storage().media.putMediaContent(content('m4', { userId: bob }), 1);
      expect(await storage().media.userUsageBytes(alice)).to.equal(230);
      expect(await storage().media.userUsageBytes(bob)).to.equal(100);
      expect(await storage().media.userUsageBytes('@carol:example.org')).to.equal(0);
    });

    it('caches thumbnails per size, method and animation', async () => {
      await storage().media.putMediaContent(content('m1'), 1);
      const key = {
        serverName: server,
        mediaId: 'm1',
        width: 32,
        height: 32,
        method: 'crop' as const,
        animated: false,
      };
      expect(await storage().media.getThumbnail(key)).to.equal(null);
      await storage().media.putThumbnail({ ...key, blob: blobB, contentType: 'image/jpeg' }, 1);
      expect(await storage().media.getThumbnail(key)).to.deep.equal({
        ...key,
        blob: blobB,
        contentType: 'image/jpeg',
      });
      expect(await storage().media.getThumbnail({ ...key, method: 'scale' })).to.equal(null);
      expect(await storage().media.getThumbnail({ ...key, animated: true })).to.equal(null);
    });

    it('quarantines and releases media', async () => {
      await storage().media.putMediaContent(content('m1'), 1);
      expect(await storage().media.setQuarantined(server, 'm1', true)).to.equal(true);
      expect((await storage().media.getMedia(server, 'm1'))?.quarantined).to.equal(true);
      expect(await storage().media.setQuarantined(server, 'm1', false)).to.equal(true);
      expect((await storage().media.getMedia(server, 'm1'))?.quarantined).to.equal(false);
      expect(await storage().media.setQuarantined(server, 'none', true)).to.equal(false);
    });

    it('finds what the clean-up may remove: expired reservations, stale media, unreferenced blobs', async () => {
      await storage().media.reserveMedia({
        serverName: server,
        mediaId: 'r1',
        userId: alice,
        createdTs: 1000,
        unusedExpiresTs: 5000,
        authenticatedOnly: false,
      });
      expect(await storage().media.deleteExpiredReservations(4999)).to.equal(0);
      expect(await storage().media.deleteExpiredReservations(5000)).to.equal(1);
      expect(await storage().media.getMedia(server, 'r1')).to.equal(null);

      await storage().media.putMediaContent(content('old'), 100);
      await storage().media.putMediaContent(content('new', { blob: blobB }), 900);
      await storage().media.touchMedia(server, 'new', 2000);
      const key = {
        serverName: server,
        mediaId: 'old',
        width: 32,
        height: 32,
        method: 'crop' as const,
        animated: false,
      };
      await storage().media.putThumbnail({ ...key, blob: blobB, contentType: 'image/jpeg' }, 100);
      expect(await storage().media.mediaNotAccessedSince(1000, 10)).to.deep.equal([
        { serverName: server, mediaId: 'old' },
      ]);
      expect(await storage().media.unreferencedBlobs(10_000, 10)).to.deep.equal([]);
      expect(await storage().media.deleteBlobIfUnreferenced(blobA.sha256)).to.equal(false);

      await storage().media.deleteMedia(server, 'old');
      expect(await storage().media.getMedia(server, 'old')).to.equal(null);
      expect(await storage().media.getThumbnail(key)).to.equal(null);
      expect(await storage().media.unreferencedBlobs(10_000, 10)).to.deep.equal([blobA]);
      // Recently used blobs are spared (an upload may be about to use it again).
      expect(await storage().media.unreferencedBlobs(50, 10)).to.deep.equal([]);
      expect(await storage().media.deleteBlobIfUnreferenced(blobA.sha256)).to.equal(true);
      expect(await storage().media.deleteBlobIfUnreferenced(blobB.sha256)).to.equal(false);
    });
  });
}
