/**
 * Everything that decodes images, with sharp: preview facts (dimensions,
 * blurhash), visually lossless re-encoding, thumbnails. Every decode is
 * bounded by `limitInputPixels`, checked from the header before any pixel is
 * decompressed, so a decompression bomb costs a header read, not gigabytes.
 */
import type { Readable } from 'node:stream';
import { encode as encodeBlurhash } from 'blurhash';
import type { Sharp, SharpOptions } from 'sharp';
import type { ThumbnailMethod } from '../../storage/media-store.js';

/** Types sharp decodes that we thumbnail and describe. */
const DECODABLE = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/tiff']);
const ANIMATABLE = new Set(['image/gif', 'image/webp']);

export function isDecodableImage(contentType: string): boolean {
  return DECODABLE.has(contentType);
}

export class ImageTooLargeError extends Error {
  override readonly name = 'ImageTooLargeError';
}

export interface ImageFacts {
  readonly width: number;
  readonly height: number;
  readonly blurhash: string | undefined;
  readonly animated: boolean;
}

/** Where an image's bytes come from: a plaintext file's path (fastest: shrink-on-load), or a stream. */
export type ImageSource = () => Promise<string | Readable>;

/** sharp (with libvips, ~20 MB of RSS) is loaded on the first image, not at start-up. */
let sharpModule: Promise<typeof import('sharp')> | undefined;

async function sharpOf(source: ImageSource, options: SharpOptions): Promise<Sharp> {
  sharpModule ??= import('sharp');
  const sharp = (await sharpModule).default;
  const input = await source();
  return typeof input === 'string' ? sharp(input, options) : input.pipe(sharp(options));
}

/** Header facts only (no pixels decoded): width, height, frames. */
async function header(source: ImageSource, maxPixels: number) {
  const meta = await (await sharpOf(source, { limitInputPixels: false })).metadata();
  const width = meta.autoOrient?.width ?? meta.width ?? 0;
  const height = meta.autoOrient?.height ?? meta.height ?? 0;
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(`Image of ${width}x${height} pixels exceeds the limit of ${maxPixels}`);
  }
  return { width, height, animated: (meta.pages ?? 1) > 1 };
}

/** Dimensions and a blurhash (4x3 components over a 32 px wide rendition). */
export async function describeImage(source: ImageSource, maxPixels: number): Promise<ImageFacts> {
  const { width, height, animated } = await header(source, maxPixels);
  const { data, info } = await (await sharpOf(source, { limitInputPixels: maxPixels }))
    .rotate()
    .resize(32, 32, { fit: 'inside' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const blurhash = encodeBlurhash(new Uint8ClampedArray(data), info.width, info.height, 4, 3);
  return { width, height, blurhash, animated };
}

/**
 * The image at the same dimensions, re-encoded visually losslessly (JPEG and
 * WebP at `quality` with mozjpeg / smart subsampling, PNG losslessly at
 * maximum effort), without metadata. The caller keeps the smaller.
 */
export async function reencodeImage(
  source: ImageSource,
  contentType: string,
  options: { maxPixels: number; quality: number },
): Promise<Buffer | undefined> {
  await header(source, options.maxPixels);
  const image = await sharpOf(source, { limitInputPixels: options.maxPixels, animated: true });
  switch (contentType) {
    case 'image/jpeg':
      return image.rotate().jpeg({ quality: options.quality, mozjpeg: true }).toBuffer();
    case 'image/png':
      return image.png({ compressionLevel: 9, effort: 10, adaptiveFiltering: true }).toBuffer();
    case 'image/webp':
      return image.webp({ quality: options.quality, effort: 6, smartSubsample: true }).toBuffer();
    default:
      return undefined;
  }
}

export interface Thumbnail {
  readonly bytes: Buffer;
  readonly contentType: string;
}

/**
 * content_repo "Thumbnails": crop fills exactly width x height (cutting
 * the excess), scale fits inside it keeping the aspect ratio; neither
 * enlarges. JPEG sources give JPEG thumbnails, others PNG; animated ones
 * (when asked and the source moves) stay animated as WebP or GIF.
 */
export async function makeThumbnail(
  source: ImageSource,
  contentType: string,
  request: { width: number; height: number; method: ThumbnailMethod; animated: boolean; maxPixels: number },
): Promise<Thumbnail> {
  const facts = await header(source, request.maxPixels);
  const animated = request.animated && facts.animated && ANIMATABLE.has(contentType);
  const image = (await sharpOf(source, { limitInputPixels: request.maxPixels, animated })).rotate();
  image.resize(request.width, request.height, {
    fit: request.method === 'crop' ? 'cover' : 'inside',
    withoutEnlargement: true,
  });
  if (animated) {
    return contentType === 'image/gif'
      ? { bytes: await image.gif().toBuffer(), contentType: 'image/gif' }
      : { bytes: await image.webp({ quality: 80 }).toBuffer(), contentType: 'image/webp' };
  }
  if (contentType === 'image/jpeg') {
    return { bytes: await image.jpeg({ quality: 80, mozjpeg: true }).toBuffer(), contentType: 'image/jpeg' };
  }
  return { bytes: await image.png().toBuffer(), contentType: 'image/png' };
}
