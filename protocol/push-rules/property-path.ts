/**
 * Dot-separated property paths (appendices "Dot-separated property paths"):
 * `content.m\.relates_to.rel_type`; `\.` is a literal dot, `\\` a literal
 * backslash, any other backslash stays as it is.
 */
import type { JsonObject, JsonValue } from '../events.js';

export function splitPropertyPath(path: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!;
    if (char === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) {
      current += path[i + 1];
      i++;
    } else if (char === '.') {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/** Escapes one property name for use in a path. */
export function escapePropertyName(name: string): string {
  return name.replace(/[\\.]/g, (char) => `\\${char}`);
}

/** The value at `parts` in `object`; undefined when any step is missing or not an object. */
export function valueAtPath(object: JsonObject, parts: readonly string[]): JsonValue | undefined {
  let value: JsonValue | undefined = object;
  for (const part of parts) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, part)) return undefined;
    value = value[part];
  }
  return value;
}
