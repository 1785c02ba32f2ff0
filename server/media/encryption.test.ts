import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { CHUNK, createEncryptStream, decryptRange, HEADER, TamperedMediaError } from './encryption.js';

async function encrypt(key: Uint8Array, plain: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  // Uneven input chunks: the sealing must not depend on how the bytes arrive.
  const pieces = [];
  for (let i = 0; i < plain.length; i += 7777) pieces.push(plain.subarray(i, i + 7777));
  for await (const chunk of Readable.from(pieces).pipe(createEncryptStream(key))) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

async function decrypt(
  key: Uint8Array,
  stored: Buffer,
  size: number,
  start = 0,
  end = size - 1,
): Promise<Buffer> {
  const out: Buffer[] = [];
  const readAt = async (offset: number, length: number) => stored.subarray(offset, offset + length);
  for await (const chunk of decryptRange(key, size, start, end, readAt)) out.push(chunk);
  return Buffer.concat(out);
}

async function expectTampered(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(TamperedMediaError);
    return;
  }
  expect.fail('expected the tampered file to be refused');
}

describe('media encryption at rest (chunked AES-256-GCM)', () => {
  const key = randomBytes(32);

  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345]) {
    it(`round-trips ${size} bytes, in full and by range`, async () => {
      const plain = randomBytes(size);
      const stored = await encrypt(key, plain);
      expect(stored.length).to.equal(HEADER + Math.max(1, Math.ceil(size / CHUNK)) * 16 + size);
      expect((await decrypt(key, stored, size)).equals(plain)).to.equal(true);
      if (size > 10) {
        const start = Math.floor(size / 3);
        const end = size - 5;
        expect(
          (await decrypt(key, stored, size, start, end)).equals(plain.subarray(start, end + 1)),
        ).to.equal(true);
      }
    });
  }

  it('refuses a flipped bit, a wrong key, a truncated file and swapped chunks', async () => {
    const size = 3 * CHUNK;
    const plain = randomBytes(size);
    const stored = await encrypt(key, plain);
    const flipped = Buffer.from(stored);
    flipped[HEADER + 2 * (CHUNK + 16) + 5]! ^= 1;
    await expectTampered(decrypt(key, flipped, size));
    await expectTampered(decrypt(randomBytes(32), stored, size));
    // Dropping the last chunk and claiming a shorter file: the new last chunk is not marked last.
    await expectTampered(decrypt(key, stored.subarray(0, HEADER + 2 * (CHUNK + 16)), 2 * CHUNK));
    const swapped = Buffer.concat([
      stored.subarray(0, HEADER),
      stored.subarray(HEADER + CHUNK + 16, HEADER + 2 * (CHUNK + 16)),
      stored.subarray(HEADER, HEADER + CHUNK + 16),
      stored.subarray(HEADER + 2 * (CHUNK + 16)),
    ]);
    await expectTampered(decrypt(key, swapped, size));
    // An empty file still authenticates its one (empty) chunk.
    const empty = await encrypt(key, Buffer.alloc(0));
    await expectTampered(decrypt(randomBytes(32), empty, 0));
  });

  it('reads only the chunks a range covers (a tampered chunk elsewhere does not matter)', async () => {
    const size = 4 * CHUNK;
    const plain = randomBytes(size);
    const stored = await encrypt(key, plain);
    stored[HEADER + 3 * (CHUNK + 16) + 1]! ^= 1;
    const slice = await decrypt(key, stored, size, 10, CHUNK + 10);
    expect(slice.equals(plain.subarray(10, CHUNK + 11))).to.equal(true);
  });
});
