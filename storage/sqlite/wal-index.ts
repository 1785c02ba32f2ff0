/**
 * How long the WAL is, read from outside SQLite (benches and tests, not the server):
 * the frame count in the wal-index header, the first 48 bytes of the `-shm` file
 * (https://sqlite.org/walformat.html). A restarted WAL counts from zero again while
 * its file keeps its size, so this, not the file size, shows whether it restarts.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

/** mxFrame: bytes 16-19 of the header, in the machine's byte order (little-endian here). */
const MX_FRAME_OFFSET = 16;

/** Frames in use in the WAL of the database file at `databasePath`; 0 without a wal-index. */
export function walFramesInUse(databasePath: string): number {
  const shm = `${databasePath}-shm`;
  if (!existsSync(shm)) return 0;
  const fd = openSync(shm, 'r');
  try {
    const field = Buffer.alloc(4);
    readSync(fd, field, 0, 4, MX_FRAME_OFFSET);
    return field.readUInt32LE(0);
  } finally {
    closeSync(fd);
  }
}

/** Size of the `-wal` file in bytes; 0 without one. */
export function walFileBytes(databasePath: string): number {
  const wal = `${databasePath}-wal`;
  return existsSync(wal) ? statSync(wal).size : 0;
}
