/**
 * A CommonJS package loaded with require on its first use. Imported from an ES
 * module, a CommonJS file is first scanned by Node's export lexer (every import,
 * at start-up); large ones make V8 optimize that lexer, and malloc keeps the
 * compile's memory: several MB of RSS for nothing. Types come from `import type`,
 * which loads nothing.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(specifier) as T;
    return loaded;
  };
}
