/**
 * Checks requests at the edge against the route's schemas (compiled once, when
 * the app is built) so nothing below re-checks shapes. Error codes follow
 * client-server "Common error codes": a missing field is M_MISSING_PARAM, a
 * malformed body M_BAD_JSON, a bad path or query value M_INVALID_PARAM; the
 * message names the field.
 */
import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { MatrixError } from '../errors.js';
import { isRawResponse, type Route } from './route.js';

export interface RouteValidators {
  params?: ValidateFunction;
  query?: ValidateFunction;
  body?: ValidateFunction;
  /** Compiled on the first check: response validation is off in production. */
  responses: Map<number, ValidateFunction> | undefined;
  readonly route: Route;
}

export interface RequestValidation {
  /**
   * Compiles a route's request schemas. Called on a route's first request, not at start-up:
   * a server only ever uses a fraction of its ~300 routes, and compiled validators are
   * most of an idle server's heap.
   */
  compile(route: Route): RouteValidators;
  validateParams(v: RouteValidators, value: Record<string, string>): unknown;
  validateQuery(v: RouteValidators, value: Record<string, unknown>): unknown;
  validateBody(v: RouteValidators, value: unknown): unknown;
  /** Returns a description of the mismatch, or undefined when the response fits its schema. */
  checkResponse(v: RouteValidators, status: number, body: unknown): string | undefined;
}

export interface RequestValidationOptions {
  /**
   * Check each schema against the JSON Schema meta-schema before compiling it (tests do:
   * they compile every route). Off in the server: the schemas are built with TypeBox, and
   * compiling the meta-schemas took ~25 ms of the first request a route validator served.
   */
  readonly checkSchemas?: boolean;
}

export function createRequestValidation(options: RequestValidationOptions = {}): RequestValidation {
  const validateSchema = options.checkSchemas ?? false;
  const bodies = newAjv({ useDefaults: true, validateSchema });
  // Path and query values are strings on the wire; coerce them to the declared types.
  const strings = newAjv({ useDefaults: true, coerceTypes: 'array', validateSchema });
  const responses = newAjv({ validateSchema });
  const compiled = new WeakMap<Route, RouteValidators>();

  return {
    compile(route) {
      const existing = compiled.get(route);
      if (existing) return existing;
      const request = route.request ?? {};
      const validators: RouteValidators = { responses: undefined, route };
      if (request.params) validators.params = strings.compile(request.params);
      if (request.query) validators.query = strings.compile(request.query);
      if (request.body) validators.body = bodies.compile(request.body);
      compiled.set(route, validators);
      return validators;
    },
    validateParams(v, value) {
      if (!v.params) return value;
      if (v.params(value)) return value;
      throw describeFailure(v.params.errors, 'path', {
        missing: 'M_MISSING_PARAM',
        invalid: 'M_INVALID_PARAM',
      });
    },
    validateQuery(v, value) {
      if (!v.query) return value;
      if (v.query(value)) return value;
      throw describeFailure(v.query.errors, 'query', {
        missing: 'M_MISSING_PARAM',
        invalid: 'M_INVALID_PARAM',
      });
    },
    validateBody(v, value) {
      if (!v.body) return undefined;
      if (v.body(value)) return value;
      throw describeFailure(v.body.errors, 'body', { missing: 'M_MISSING_PARAM', invalid: 'M_BAD_JSON' });
    },
    checkResponse(v, status, body) {
      if (v.responses === undefined) {
        v.responses = new Map();
        for (const [code, spec] of Object.entries(v.route.responses)) {
          if (!isRawResponse(spec)) v.responses.set(Number(code), responses.compile(spec as TSchema));
        }
      }
      const validate = v.responses.get(status);
      if (!validate || validate(body)) return undefined;
      return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    },
  };
}

function newAjv(options: { useDefaults?: boolean; coerceTypes?: 'array'; validateSchema: boolean }): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: false, ...options });
  addFormats.default(ajv);
  return ajv;
}

type Where = 'path' | 'query' | 'body';

function describeFailure(
  errors: ErrorObject[] | null | undefined,
  where: Where,
  codes: { missing: 'M_MISSING_PARAM'; invalid: 'M_INVALID_PARAM' | 'M_BAD_JSON' },
): MatrixError {
  const error = errors?.[0];
  if (!error) return MatrixError.of(codes.invalid, `Invalid ${describeWhere(where)}`);
  const field = fieldName(error.instancePath);
  if (error.keyword === 'required') {
    const missing = [field, String(error.params.missingProperty)].filter(Boolean).join('.');
    return MatrixError.of(codes.missing, `Missing ${describeWhere(where)} '${missing}'`);
  }
  if (!field) {
    const what = where === 'body' ? 'request body' : describeWhere(where);
    return MatrixError.of(codes.invalid, `Invalid ${what}: ${error.message}`);
  }
  return MatrixError.of(codes.invalid, `Invalid ${describeWhere(where)} '${field}': ${error.message}`);
}

function describeWhere(where: Where): string {
  if (where === 'path') return 'path parameter';
  if (where === 'query') return 'query parameter';
  return 'request body field';
}

/** `/content/m.relates_to/rel_type` -> `content.m.relates_to.rel_type`, undoing JSON Pointer escapes. */
function fieldName(instancePath: string): string {
  if (!instancePath) return '';
  return instancePath
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .join('.');
}
