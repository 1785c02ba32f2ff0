/**
 * GET /media/preview_url: a page's OpenGraph data, fetched through the outbound
 * address guard against server-side request forgery (a refused address is 403);
 * redirects are followed by hand and each hop is checked again. Pages are
 * read up to a size limit within a time limit, and previews are cached.
 */
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import type { MyelinConfig } from '../config/index.js';
import { MatrixError } from '../errors.js';
import { AddressGuard } from '../outbound/address-guard.js';
import { GuardedFetch, readLimited } from '../outbound/guarded-fetch.js';
import type { MediaService } from './media-service.js';

const MAX_REDIRECTS = 5;

export class UrlPreviewService {
  private readonly http: GuardedFetch;
  private readonly cache: LRUCache<string, JsonObject>;

  constructor(private readonly deps: { config: MyelinConfig; media: MediaService; log: Logger }) {
    const settings = deps.config.media.url_preview;
    this.http = new GuardedFetch(
      new AddressGuard(settings.ip_allowlist, settings.ip_denylist),
      settings.timeout_ms,
      'Previews of this address are not allowed',
    );
    this.cache = new LRUCache({ max: 1000, ttl: Math.max(1, settings.cache_ttl_ms) });
  }

  async preview(url: string, userId: string): Promise<JsonObject> {
    const settings = this.deps.config.media.url_preview;
    if (!settings.enabled) throw MatrixError.notFound('URL previews are turned off');
    const cached = this.cache.get(url);
    if (cached) return cached;
    const signal = AbortSignal.timeout(settings.timeout_ms);
    const page = await this.fetch(url, signal).catch((error: unknown) => {
      if (error instanceof MatrixError) throw error;
      this.deps.log.info({ err: error, url }, 'URL preview fetch failed');
      throw new MatrixError(502, 'M_UNKNOWN', 'Could not fetch the URL');
    });
    let og: JsonObject;
    if (page.contentType.startsWith('image/')) {
      og = await this.imageFields(page.body, page.contentType, userId);
    } else if (/html/.test(page.contentType)) {
      og = await parseOpenGraph(page.body.toString('utf8'));
      const image = typeof og['og:image'] === 'string' ? og['og:image'] : undefined;
      if (image) {
        delete og['og:image'];
        try {
          const fetched = await this.fetch(new URL(image, page.url).toString(), signal);
          if (fetched.contentType.startsWith('image/')) {
            Object.assign(og, await this.imageFields(fetched.body, fetched.contentType, userId));
          }
        } catch (error) {
          this.deps.log.debug({ err: error, image }, 'URL preview image fetch failed');
        }
      }
    } else {
      og = {};
    }
    this.cache.set(url, og);
    return og;
  }

  private async imageFields(body: Buffer, contentType: string, userId: string): Promise<JsonObject> {
    const stored = await this.deps.media.upload({
      userId,
      body: Readable.from([body]),
      claimedType: contentType,
      fileName: null,
      contentLength: body.length,
    });
    const fields: JsonObject = { 'og:image': stored.contentUri, 'matrix:image:size': body.length };
    const preview = stored.preview ?? {};
    if (typeof preview.mimetype === 'string') fields['og:image:type'] = preview.mimetype;
    if (typeof preview.w === 'number') fields['og:image:width'] = preview.w;
    if (typeof preview.h === 'number') fields['og:image:height'] = preview.h;
    return fields;
  }

  /** GET with every hop vetted; the body read up to max_page_bytes. */
  private async fetch(
    start: string,
    signal: AbortSignal,
  ): Promise<{ url: string; contentType: string; body: Buffer }> {
    const limit = this.deps.config.media.url_preview.max_page_bytes;
    let url = start;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const target = parseHttpUrl(url);
      const response = await this.http.request(target, {
        method: 'GET',
        signal,
        headers: { 'user-agent': 'Myelin URL preview', accept: 'text/html,image/*;q=0.9,*/*;q=0.5' },
      });
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
        await response.body.dump();
        url = new URL(location, url).toString();
        continue;
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new MatrixError(502, 'M_UNKNOWN', `The URL answered ${response.statusCode}`);
      }
      const body = await readLimited(response.body, limit, () =>
        MatrixError.tooLarge('The page is too large to preview'),
      );
      const type = response.headers['content-type'];
      return {
        url,
        contentType: (typeof type === 'string' ? type : '').split(';')[0]!.trim().toLowerCase(),
        body,
      };
    }
    throw new MatrixError(502, 'M_UNKNOWN', 'Too many redirects');
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

function parseHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw MatrixError.invalidParam('Not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw MatrixError.invalidParam('Only http and https URLs can be previewed');
  }
  return parsed;
}

/** htmlparser2 (with its entity tables) is loaded on the first page previewed, not at start-up. */
let htmlParserModule: Promise<typeof import('htmlparser2')> | undefined;

/** og:* meta tags; the <title> and meta description stand in for a missing og:title / og:description. */
export async function parseOpenGraph(html: string): Promise<JsonObject> {
  htmlParserModule ??= import('htmlparser2');
  const { Parser } = await htmlParserModule;
  const og: JsonObject = {};
  let title = '';
  let inTitle = false;
  let description: string | undefined;
  const parser = new Parser(
    {
      onopentag(name, attributes) {
        if (name === 'title') inTitle = true;
        if (name !== 'meta') return;
        const key = attributes.property ?? attributes.name;
        const content = attributes.content;
        if (key === undefined || content === undefined) return;
        if (key.startsWith('og:') && !(key in og)) og[key] = content.slice(0, 1000);
        if (key === 'description') description ??= content.slice(0, 1000);
      },
      ontext(text) {
        if (inTitle && title.length < 1000) title += text;
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
  if (!('og:title' in og) && title.trim() !== '') og['og:title'] = title.trim();
  if (!('og:description' in og) && description !== undefined) og['og:description'] = description;
  return og;
}
