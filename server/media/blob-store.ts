/**
 * Media bytes on disk, content-addressed: a blob's file is named by the
 * SHA-256 of its plaintext (`<root>/ab/cd/<sha256>`, `.aes` when encrypted),
 * so identical uploads are stored once. Writes stream into a temporary file
 * while hashing and are renamed into place on commit; reads stream, also by
 * byte range. Nothing here holds a whole file in memory.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { MediaBlob } from '../../storage/media-store.js';
import { MatrixError } from '../errors.js';
import { RequestAbortedError } from '../http/request-body.js';
import { createEncryptStream, decryptRange, TamperedMediaError } from './encryption.js';

/** Bytes kept from the start of an upload for sniffing its type (file-type reads at most this many). */
const HEAD_BYTES = 4100;

/** A written but not yet committed blob: processing may read it, then commit or discard it. */
export interface PendingBlob {
  readonly blob: MediaBlob;
  /** The first bytes of what the client sent (before any transform). */
  readonly head: Buffer;
  /** Bytes the client sent. */
  readonly receivedBytes: number;
  readonly tmpPath: string;
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

export class BlobStore {
  constructor(
    private readonly root: string,
    /** Reads encrypted blobs; undefined when no key is configured. */
    private readonly key: Uint8Array | undefined,
    /** Encrypt new blobs. */
    private readonly encryptNew: boolean,
  ) {
    if (encryptNew && !key) throw new Error('Media encryption needs a key');
  }

  async init(): Promise<void> {
    await mkdir(path.join(this.root, 'tmp'), { recursive: true });
  }

  /**
   * Streams `source` into a temporary blob, through `transform` when given
   * (metadata stripping). More than `limit` bytes from the source fail with 413
   * M_TOO_LARGE; the rest of the source is drained, not kept.
   */
  async write(
    source: Readable,
    options: { limit: number; transform?: Transform | undefined },
  ): Promise<PendingBlob> {
    const tmpPath = path.join(this.root, 'tmp', randomUUID());
    const head: Buffer[] = [];
    let headBytes = 0;
    let received = 0;
    const hash = createHash('sha256');
    let size = 0;
    const limiter = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        received += chunk.length;
        if (received > options.limit) {
          callback(MatrixError.tooLarge(`Upload too large (limit ${options.limit} bytes)`));
          return;
        }
        if (headBytes < HEAD_BYTES) {
          head.push(chunk.subarray(0, HEAD_BYTES - headBytes));
          headBytes += Math.min(chunk.length, HEAD_BYTES - headBytes);
        }
        callback(null, chunk);
      },
    });
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const stages: NodeJS.ReadWriteStream[] = [limiter];
    if (options.transform) stages.push(options.transform);
    stages.push(hasher);
    if (this.encryptNew) stages.push(createEncryptStream(this.key!));

    // The source is piped, not handed to pipeline(): on an error it must be drained, not destroyed,
    // so the client can finish sending and read our answer.
    const onSourceClose = () => {
      if (!source.readableEnded) limiter.destroy(new RequestAbortedError());
    };
    const onSourceError = (error: Error) => limiter.destroy(error);
    source.on('close', onSourceClose);
    source.on('error', onSourceError);
    source.pipe(limiter);
    try {
      await pipeline([...stages, createWriteStream(tmpPath)] as ReadonlyArray<
        NodeJS.ReadWriteStream | NodeJS.WritableStream
      >);
    } catch (error) {
      source.unpipe(limiter);
      source.resume();
      await rm(tmpPath, { force: true });
      throw error;
    } finally {
      source.off('close', onSourceClose);
      source.off('error', onSourceError);
    }
    return {
      blob: { sha256: hash.digest('hex'), size, encrypted: this.encryptNew },
      head: Buffer.concat(head, headBytes),
      receivedBytes: received,
      tmpPath,
    };
  }

  /** Writes bytes already in memory (a re-encoded image, a thumbnail). */
  writeBuffer(bytes: Uint8Array): Promise<PendingBlob> {
    return this.write(Readable.from([Buffer.from(bytes)]), { limit: Number.MAX_SAFE_INTEGER });
  }

  /** Moves the blob into place (replacing an identical one). */
  async commit(pending: PendingBlob): Promise<void> {
    const file = this.pathOf(pending.blob);
    await mkdir(path.dirname(file), { recursive: true });
    await rename(pending.tmpPath, file);
  }

  async discard(pending: PendingBlob): Promise<void> {
    await rm(pending.tmpPath, { force: true });
  }

  /** The stored file of a blob (the thing encryption at rest protects). */
  pathOf(blob: MediaBlob): string {
    const name = blob.encrypted ? `${blob.sha256}.aes` : blob.sha256;
    return path.join(this.root, blob.sha256.slice(0, 2), blob.sha256.slice(2, 4), name);
  }

  /** Removes both forms of a blob's file. */
  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf({ sha256, size: 0, encrypted: false }), { force: true });
    await rm(this.pathOf({ sha256, size: 0, encrypted: true }), { force: true });
  }

  /** The plaintext of a committed blob, or of the given range of it. */
  open(blob: MediaBlob, range?: ByteRange): Promise<Readable> {
    return this.openFile(this.pathOf(blob), blob, range);
  }

  /** The plaintext of a blob not yet committed (processing reads it). */
  openPending(pending: PendingBlob): Promise<Readable> {
    return this.openFile(pending.tmpPath, pending.blob);
  }

  /**
   * For an encrypted blob the first chunk is decrypted and authenticated
   * before this resolves, so a tampered file is refused before any answer is
   * sent; a later chunk that fails errors the stream (the answer is cut).
   */
  private async openFile(file: string, blob: MediaBlob, range?: ByteRange): Promise<Readable> {
    const start = range?.start ?? 0;
    const end = range?.end ?? blob.size - 1;
    if (!blob.encrypted) {
      if (blob.size === 0 || end < start) return Readable.from([]);
      // Opened before answering, so a missing file is an error response, not a cut one.
      const handle = await open(file, 'r');
      return handle.createReadStream({ start, end, highWaterMark: 1024 * 1024, autoClose: true });
    }
    if (!this.key) throw new TamperedMediaError('Stored media is encrypted but no key is configured');
    const handle = await open(file, 'r');
    const chunks = decryptRange(this.key, blob.size, start, end, readerOf(handle));
    let first: IteratorResult<Buffer>;
    try {
      first = await chunks.next();
    } catch (error) {
      await handle.close();
      throw error;
    }
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    void (async () => {
      try {
        if (!first.done) {
          if (!out.write(first.value)) await drained(out);
          for await (const chunk of chunks) {
            if (out.destroyed) break;
            if (!out.write(chunk)) await drained(out);
          }
        }
        out.end();
      } catch (error) {
        out.destroy(error as Error);
      } finally {
        await handle.close();
      }
    })();
    return out;
  }
}

function readerOf(handle: FileHandle): (offset: number, length: number) => Promise<Buffer> {
  return async (offset, length) => {
    const buffer = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await handle.read(buffer, read, length - read, offset + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read);
  };
}

function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
