/**
 * Encryption at rest: AES-256-GCM over fixed 64 KiB chunks, each with its own
 * tag (the STREAM construction). A reader authenticates every chunk before
 * letting a byte of it out, so a tampered file is refused chunk by chunk
 * without holding the file in memory, and a range read decrypts only the
 * chunks it covers.
 *
 * File layout: MAGIC (8 bytes) | nonce prefix (7 random bytes) | chunks,
 * each = ciphertext (CHUNK bytes, the last one shorter) | tag (16 bytes).
 * Chunk i's nonce = prefix | i as uint32 BE | 1 if last else 0, so chunks
 * cannot be reordered, and a truncated file lacks its last-marked chunk.
 * The header is the additional data of every chunk.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';

export const CHUNK = 64 * 1024;
const TAG = 16;
const MAGIC = Buffer.from('MYLNAES1');
export const HEADER = MAGIC.length + 7;
const KEY_BYTES = 32;

export class TamperedMediaError extends Error {
  override readonly name = 'TamperedMediaError';
  constructor(message = 'Stored media failed its integrity check') {
    super(message);
  }
}

function nonce(prefix: Buffer, index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, 7);
  n.writeUInt32BE(index, 7);
  n[11] = last ? 1 : 0;
  return n;
}

/** Plaintext in, the encrypted file format out. */
export function createEncryptStream(key: Uint8Array): Transform {
  const prefix = randomBytes(7);
  const header = Buffer.concat([MAGIC, prefix]);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  let headerSent = false;

  const seal = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', key, nonce(prefix, index++, last));
    cipher.setAAD(header);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (!headerSent) {
        this.push(header);
        headerSent = true;
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      // Keep at least one byte back: only at the end do we know which chunk is the last.
      while (pendingBytes > CHUNK) {
        const all = Buffer.concat(pending, pendingBytes);
        this.push(seal(all.subarray(0, CHUNK), false));
        const rest = all.subarray(CHUNK);
        pending = [rest];
        pendingBytes = rest.length;
      }
      callback();
    },
    flush(callback: TransformCallback) {
      if (!headerSent) this.push(header);
      this.push(seal(Buffer.concat(pending, pendingBytes), true));
      callback();
    },
  });
}

/**
 * Decrypts the chunks covering plaintext bytes [start, end] (inclusive) of a
 * file of `size` plaintext bytes, read through `readAt(offset, length)`, and
 * yields exactly that slice. Throws TamperedMediaError on a chunk that does
 * not authenticate.
 */
export async function* decryptRange(
  key: Uint8Array,
  size: number,
  start: number,
  end: number,
  readAt: (offset: number, length: number) => Promise<Buffer>,
): AsyncGenerator<Buffer> {
  const header = await readAt(0, HEADER);
  if (header.length !== HEADER || !header.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new TamperedMediaError('Stored media has no encryption header');
  }
  const prefix = header.subarray(MAGIC.length);
  const chunkCount = Math.max(1, Math.ceil(size / CHUNK));
  if (size === 0) {
    // Still authenticate the (empty) final chunk: a swapped or truncated file must not read as empty.
    open(key, prefix, header, 0, true, await readAt(HEADER, TAG));
    return;
  }
  const first = Math.floor(start / CHUNK);
  const lastIndex = Math.floor(end / CHUNK);
  for (let i = first; i <= lastIndex; i++) {
    const plainLength = i === chunkCount - 1 ? size - i * CHUNK : CHUNK;
    const sealed = await readAt(HEADER + i * (CHUNK + TAG), plainLength + TAG);
    const plain = open(key, prefix, header, i, i === chunkCount - 1, sealed);
    const from = i === first ? start - i * CHUNK : 0;
    const to = i === lastIndex ? end - i * CHUNK + 1 : plain.length;
    yield plain.subarray(from, to);
  }
}

function open(
  key: Uint8Array,
  prefix: Buffer,
  header: Buffer,
  index: number,
  last: boolean,
  sealed: Buffer,
): Buffer {
  if (sealed.length < TAG) throw new TamperedMediaError('Stored media is truncated');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(prefix, index, last));
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG)), decipher.final()]);
  } catch {
    throw new TamperedMediaError();
  }
}

/**
 * The key: config `key` (base64), else the key file, made on first start when
 * encryption is on. Undefined when encryption is off and no key exists (then
 * encrypted blobs cannot be read, which start-up reports when it matters).
 */
export async function loadMediaKey(
  options: { enabled: boolean; key: string; keyPath: string; dataDir: string },
  log: Logger,
): Promise<Uint8Array | undefined> {
  if (options.key !== '') return parseKey(options.key, 'media.encryption.key');
  const file = options.keyPath || path.join(options.dataDir, 'media.key');
  try {
    return parseKey(await readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (!options.enabled) return undefined;
  const key = randomBytes(KEY_BYTES);
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  log.info({ file }, 'Generated a new media encryption key');
  return key;
}

function parseKey(text: string, source: string): Uint8Array {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${source}: expected a base64 ${KEY_BYTES}-byte key`);
  return key;
}
