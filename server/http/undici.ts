/**
 * undici, loaded on first use: its module graph costs about 20 MB of RSS, which a
 * server that has fetched nothing yet (no federation traffic, no URL preview) need
 * not pay at start-up. Types come from `import type`, which loads nothing.
 */
import { createRequire } from 'node:module';

type Undici = typeof import('undici');
let loaded: Undici | undefined;

export function undici(): Undici {
  loaded ??= createRequire(import.meta.url)('undici') as Undici;
  return loaded;
}
