/**
 * Matches a raw request path against the route table's Matrix-style templates.
 * Segments are compared before percent-decoding, so an encoded `/` inside a room
 * alias stays inside its parameter. Knows the difference the spec asks for:
 * unknown path (404) versus known path with another method (405).
 */
import type { HttpMethod, Route } from './route.js';

type Segment = { literal: string } | { param: string };

interface CompiledTemplate {
  readonly segments: readonly Segment[];
  readonly byMethod: Map<HttpMethod, Route>;
}

export type RouteMatch =
  | { kind: 'found'; route: Route; rawParams: Record<string, string> }
  | { kind: 'method-not-allowed'; allowed: readonly string[] }
  | { kind: 'not-found' };

/** The parameters of a template without any: shared, never written (the pipeline decodes into a new object). */
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export interface Router {
  match(method: string, rawPath: string): RouteMatch;
}

export function parsePathTemplate(path: string): Segment[] {
  if (!path.startsWith('/')) throw new Error(`Route path must start with '/': ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((part) => {
      const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(part);
      if (param) return { param: param[1]! };
      if (/[{}]/.test(part)) throw new Error(`A path parameter must fill its whole segment: ${path}`);
      return { literal: part };
    });
}

export function createRouter(routes: readonly Route[]): Router {
  const templates = new Map<string, CompiledTemplate>();
  for (const route of routes) {
    let template = templates.get(route.path);
    if (!template) {
      template = { segments: parsePathTemplate(route.path), byMethod: new Map() };
      templates.set(route.path, template);
    }
    if (template.byMethod.has(route.method)) {
      throw new Error(`Route declared twice: ${route.method} ${route.path}`);
    }
    template.byMethod.set(route.method, route);
  }
  // Literal segments win over parameters at the first place two templates differ.
  const ordered = [...templates.values()].sort((a, b) => compareSpecificity(a.segments, b.segments));
  const bySegmentCount = new Map<number, CompiledTemplate[]>();
  for (const template of ordered) {
    const count = template.segments.length;
    bySegmentCount.set(count, [...(bySegmentCount.get(count) ?? []), template]);
  }

  // Templates without parameters, by their path: most hot routes (/sync, /versions, whoami)
  // are found with one lookup. Only a hit with the method is final: on a miss, a template
  // with parameters may still take the path (and the scan gathers what 405 lists).
  const literal = new Map<string, CompiledTemplate>();
  for (const [path, template] of templates) {
    if (template.segments.every((segment) => 'literal' in segment)) literal.set(path, template);
  }

  return {
    match(method, rawPath) {
      const wanted = method === 'HEAD' ? 'GET' : method;
      const exact = literal.get(rawPath)?.byMethod.get(wanted as HttpMethod);
      if (exact !== undefined) return { kind: 'found', route: exact, rawParams: NO_PARAMS };
      const parts = rawPath.slice(1).split('/');
      let allowed: string[] | undefined;
      for (const template of bySegmentCount.get(parts.length) ?? []) {
        const rawParams = matchSegments(template.segments, parts);
        if (!rawParams) continue;
        const route = template.byMethod.get(wanted as HttpMethod);
        if (route) return { kind: 'found', route, rawParams };
        allowed ??= allowedMethods(template);
      }
      return allowed ? { kind: 'method-not-allowed', allowed } : { kind: 'not-found' };
    },
  };
}

/** Runs for every template of the request's length: literals are compared before anything is allocated. */
function matchSegments(
  segments: readonly Segment[],
  parts: readonly string[],
): Record<string, string> | null {
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if ('literal' in segment && segment.literal !== parts[i]) return null;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if ('param' in segment) params[segment.param] = parts[i]!;
  }
  return params;
}

function compareSpecificity(a: readonly Segment[], b: readonly Segment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const aLiteral = 'literal' in a[i]!;
    const bLiteral = 'literal' in b[i]!;
    if (aLiteral !== bLiteral) return aLiteral ? -1 : 1;
  }
  return 0;
}

function allowedMethods(template: CompiledTemplate): string[] {
  const methods = [...template.byMethod.keys()] as string[];
  if (methods.includes('GET')) methods.push('HEAD');
  methods.push('OPTIONS');
  return methods;
}
