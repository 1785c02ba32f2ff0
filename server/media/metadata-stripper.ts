/**
 * Removes identifying metadata from JPEG and PNG as the bytes stream by,
 * losslessly (the image data is not decoded or touched):
 * - JPEG: APP1 (EXIF with GPS and camera details, XMP), APP13 (IPTC) and
 *   comments. A non-default EXIF orientation is kept as a minimal EXIF
 *   segment, so phones' photos do not turn sideways.
 * - PNG: tEXt, zTXt, iTXt, eXIf and tIME chunks.
 * Anything it does not understand passes through unchanged.
 */
import { Transform, type TransformCallback } from 'node:stream';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_DROPPED = new Set(['tEXt', 'zTXt', 'iTXt', 'eXIf', 'tIME']);
/** APP1 (EXIF, XMP), APP13 (IPTC), COM. */
const JPEG_DROPPED = new Set([0xe1, 0xed, 0xfe]);

type Step =
  /** Need `bytes` buffered to decide. */
  | { kind: 'need'; bytes: number }
  /** Copy `bytes` then continue parsing. */
  | { kind: 'copy'; bytes: number }
  /** Drop `bytes` (writing `insert` in their place) then continue parsing. */
  | { kind: 'drop'; bytes: number; insert?: Buffer }
  /** Copy everything that follows. */
  | { kind: 'rest' };

/** Recognises JPEG and PNG by their first bytes; anything else passes through untouched. */
export function createMetadataStripper(): Transform {
  let format: ((data: Buffer) => Step) | undefined;
  const parse = (data: Buffer): Step => {
    if (!format) {
      if (data.length < 8) return { kind: 'need', bytes: 8 };
      if (data.subarray(0, 8).equals(PNG_SIGNATURE)) format = pngStep();
      else if (data[0] === 0xff && data[1] === 0xd8) format = jpegStep();
      else return { kind: 'rest' };
    }
    return format(data);
  };
  let buffered = Buffer.alloc(0);
  let pass: { copy: boolean; bytes: number } | undefined;
  let rest = false;

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      let data = buffered.length > 0 ? Buffer.concat([buffered, chunk]) : chunk;
      buffered = Buffer.alloc(0);
      while (data.length > 0) {
        if (rest) {
          this.push(data);
          break;
        }
        if (pass) {
          const n = Math.min(pass.bytes, data.length);
          if (pass.copy) this.push(data.subarray(0, n));
          pass.bytes -= n;
          if (pass.bytes === 0) pass = undefined;
          data = data.subarray(n);
          continue;
        }
        const step = parse(data);
        if (step.kind === 'need') {
          buffered = Buffer.from(data);
          break;
        }
        if (step.kind === 'rest') {
          rest = true;
          continue;
        }
        if (step.kind === 'drop' && step.insert) this.push(step.insert);
        pass = { copy: step.kind === 'copy', bytes: step.bytes };
      }
      callback();
    },
    flush(callback: TransformCallback) {
      if (buffered.length > 0) this.push(buffered);
      callback();
    },
  });

  function pngStep(): (data: Buffer) => Step {
    let started = false;
    return (data) => {
      if (!started) {
        if (data.length < 8) return { kind: 'need', bytes: 8 };
        if (!data.subarray(0, 8).equals(PNG_SIGNATURE)) return { kind: 'rest' };
        started = true;
        return { kind: 'copy', bytes: 8 };
      }
      if (data.length < 8) return { kind: 'need', bytes: 8 };
      const length = data.readUInt32BE(0);
      const type = data.toString('latin1', 4, 8);
      // length + type + data + CRC.
      const total = 12 + length;
      if (type === 'IDAT' || type === 'IEND') return { kind: 'copy', bytes: total };
      return { kind: PNG_DROPPED.has(type) ? 'drop' : 'copy', bytes: total };
    };
  }

  function jpegStep(): (data: Buffer) => Step {
    let started = false;
    return (data) => {
      if (!started) {
        if (data.length < 2) return { kind: 'need', bytes: 2 };
        if (data[0] !== 0xff || data[1] !== 0xd8) return { kind: 'rest' };
        started = true;
        return { kind: 'copy', bytes: 2 };
      }
      if (data.length < 4) return { kind: 'need', bytes: 4 };
      if (data[0] !== 0xff) return { kind: 'rest' };
      const marker = data[1]!;
      // Start of scan: entropy-coded data follows; nothing more to strip.
      if (marker === 0xda) return { kind: 'rest' };
      const length = data.readUInt16BE(2);
      const total = 2 + length;
      if (!JPEG_DROPPED.has(marker)) return { kind: 'copy', bytes: total };
      if (marker === 0xe1) {
        if (data.length < total) return { kind: 'need', bytes: total };
        const orientation = exifOrientation(data.subarray(4, total));
        if (orientation !== undefined && orientation !== 1) {
          return { kind: 'drop', bytes: total, insert: orientationSegment(orientation) };
        }
      }
      return { kind: 'drop', bytes: total };
    };
  }
}

/** EXIF orientation (tag 0x0112 of IFD0) from an APP1 payload, if it is EXIF and has one. */
export function exifOrientation(payload: Buffer): number | undefined {
  if (payload.length < 14 || payload.toString('latin1', 0, 6) !== 'Exif\0\0') return undefined;
  const tiff = payload.subarray(6);
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  try {
    const ifd = u32(4);
    const count = u16(ifd);
    for (let i = 0; i < count; i++) {
      const entry = ifd + 2 + i * 12;
      if (u16(entry) === 0x0112) return u16(entry + 8);
    }
  } catch {
    // A truncated or malformed EXIF block: no orientation.
  }
  return undefined;
}

/** A minimal APP1 segment carrying only an orientation. */
export function orientationSegment(orientation: number): Buffer {
  const segment = Buffer.alloc(36);
  segment.writeUInt16BE(0xffe1, 0);
  segment.writeUInt16BE(34, 2);
  segment.write('Exif\0\0', 4, 'latin1');
  segment.write('MM\0*', 10, 'latin1');
  segment.writeUInt32BE(8, 14);
  segment.writeUInt16BE(1, 18);
  segment.writeUInt16BE(0x0112, 20);
  segment.writeUInt16BE(3, 22);
  segment.writeUInt32BE(1, 24);
  segment.writeUInt16BE(orientation, 28);
  segment.writeUInt32BE(0, 32);
  return segment;
}
