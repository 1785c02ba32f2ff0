import { Readable } from 'node:stream';
import { expect } from 'chai';
import sharp from 'sharp';
import { createMetadataStripper, exifOrientation, orientationSegment } from './metadata-stripper.js';

async function strip(bytes: Buffer, pieceSize = 13): Promise<Buffer> {
  const pieces = [];
  for (let i = 0; i < bytes.length; i += pieceSize) pieces.push(bytes.subarray(i, i + pieceSize));
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(pieces).pipe(createMetadataStripper())) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

const base = () => sharp({ create: { width: 64, height: 32, channels: 3, background: '#884422' } });

describe('image metadata stripping (lossless, streaming)', () => {
  it('removes EXIF with GPS and camera details from a JPEG, keeping the image data', async () => {
    const jpeg = await base()
      .jpeg()
      .withExif({
        IFD0: { Make: 'Phone', Model: 'Camera 3000' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '1/1 2/1 3/1' },
      })
      .toBuffer();
    const stripped = await strip(jpeg);
    expect(stripped.length).to.be.below(jpeg.length);
    expect(stripped.includes(Buffer.from('Camera 3000'))).to.equal(false);
    const meta = await sharp(stripped).metadata();
    expect(meta.exif).to.equal(undefined);
    expect([meta.width, meta.height]).to.deep.equal([64, 32]);
    const [a, b] = await Promise.all([sharp(jpeg).raw().toBuffer(), sharp(stripped).raw().toBuffer()]);
    expect(a.equals(b)).to.equal(true);
  });

  it('keeps a rotation as a minimal EXIF orientation, so photos stay upright', async () => {
    const jpeg = await base()
      .jpeg()
      .withMetadata({ orientation: 6 })
      .withExif({ IFD0: { Model: 'Secret' } })
      .toBuffer();
    const stripped = await strip(jpeg, 1000);
    expect(stripped.includes(Buffer.from('Secret'))).to.equal(false);
    expect((await sharp(stripped).metadata()).orientation).to.equal(6);
  });

  it('removes text chunks from a PNG and leaves its pixels alone', async () => {
    const png = await base()
      .png()
      .withExif({ IFD0: { Artist: 'Someone Private' } })
      .toBuffer();
    expect(png.includes(Buffer.from('Someone Private'))).to.equal(true);
    const stripped = await strip(png, 7);
    expect(stripped.includes(Buffer.from('Someone Private'))).to.equal(false);
    const [a, b] = await Promise.all([sharp(png).raw().toBuffer(), sharp(stripped).raw().toBuffer()]);
    expect(a.equals(b)).to.equal(true);
  });

  it('passes anything else through unchanged, including tiny inputs', async () => {
    for (const bytes of [Buffer.alloc(0), Buffer.from('x'), Buffer.from('GIF89a and more bytes here')]) {
      expect((await strip(bytes)).equals(bytes)).to.equal(true);
    }
  });

  it('reads the orientation of an EXIF block, and none from anything else', () => {
    expect(exifOrientation(orientationSegment(8).subarray(4))).to.equal(8);
    expect(exifOrientation(Buffer.from('not exif at all, really'))).to.equal(undefined);
  });
});
