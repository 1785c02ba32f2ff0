/**
 * A route is declared once, as data: method, Matrix-style path, auth, rate-limit
 * class, request and response schemas, and a handler that receives typed,
 * already-validated input. The request pipeline, the router and the OpenAPI
 * document all read the same declaration.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { type Static, type TObject, type TSchema, type TUndefined, Type } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/index.js';
import type { HomeserverContext } from '../context.js';
import type { AuthenticatedServer, AuthenticatedUser } from './auth.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * none: anyone. optional: a token is checked when given. access-token: a local
 * user or appservice (client-server "Client Authentication"). x-matrix: a
 * remote homeserver (server-server "Request Authentication").
 */
export type AuthRequirement = 'none' | 'optional' | 'access-token' | 'x-matrix';

/** Which token bucket a request draws from (rate_limits in the config); none draws from none. */
export type RateLimitClass = 'none' | 'client' | 'login' | 'registration' | 'federation';

/** The listener resource (config listeners[].resources) a route belongs to. */
export type Resource = ListenerConfig['resources'][number];

/** A response whose body is not JSON (text, HTML, bytes). */
export interface RawResponse {
  readonly contentType: string;
  readonly description: string;
}

export function rawResponse(contentType: string, description: string): RawResponse {
  return { contentType, description };
}

export function isRawResponse(spec: ResponseSpec): spec is RawResponse {
  return typeof (spec as RawResponse).contentType === 'string' && !('type' in spec);
}

/** JSON responses are TypeBox schemas (their `description` becomes the OpenAPI response description). */
export type ResponseSpec = TSchema | RawResponse;
export type ResponseMap = { readonly [status: number]: ResponseSpec };

/** Raw bodies may stream (media downloads): the pipeline passes a Readable through untouched. */
type BodyOf<S> = S extends TSchema ? Static<S> : string | Uint8Array | Readable;

export type Reply<R extends ResponseMap> = {
  [K in keyof R & number]: { status: K; body: BodyOf<R[K]>; headers?: Record<string, string> };
}[keyof R & number];

/** A handler's answer: `return reply(200, { versions })`. Keeps the status a literal so it is checked against `responses`. */
export function reply<S extends number, T>(
  status: S,
  body: T,
  headers?: Record<string, string>,
): { status: S; body: T; headers?: Record<string, string> } {
  return headers ? { status, body, headers } : { status, body };
}

export type RequesterFor<A extends AuthRequirement> = A extends 'access-token'
  ? AuthenticatedUser
  : A extends 'optional'
    ? AuthenticatedUser | undefined
    : A extends 'x-matrix'
      ? AuthenticatedServer
      : undefined;

export interface RouteRequest<P, Q, B, A extends AuthRequirement> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly requester: RequesterFor<A>;
  readonly requestId: string;
  readonly log: Logger;
  /**
   * Aborted when the client goes away or the server stops: long polls end early on it. Over
   * HTTP it is the connection's, shared by the requests it carries one after another: a
   * listener added to it must be removed when the wait it serves ends.
   */
  readonly signal: AbortSignal;
  readonly ip: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw request body as it arrives, for routes that declare `streamBody` (uploads); read it once. */
  bodyStream(): Readable;
}

type EmptyObject = TObject<Record<never, never>>;

export interface RouteDefinition<
  P extends TSchema = EmptyObject,
  Q extends TSchema = EmptyObject,
  B extends TSchema = TUndefined,
  R extends ResponseMap = ResponseMap,
  A extends AuthRequirement = AuthRequirement,
> {
  readonly method: HttpMethod;
  /** Matrix style, e.g. `/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  /** The spec module, e.g. 'Server discovery'; groups the OpenAPI document. */
  readonly tags: readonly string[];
  readonly resource: Resource;
  readonly auth: A;
  readonly rateLimit: RateLimitClass;
  readonly request?: {
    /** One property per `{name}` in the path; values arrive percent-decoded. */
    readonly params?: P;
    /** Strings coerced to the declared scalar types; a repeated key is an array. */
    readonly query?: Q;
    /** A JSON body; the request is read only when this is declared. */
    readonly body?: B;
    /** An empty body reads as `{}` rather than M_NOT_JSON. */
    readonly allowEmptyBody?: boolean;
    /**
     * The body is not read nor parsed by the pipeline: the handler streams it
     * with `bodyStream()` (uploads of any size), after authentication.
     */
    readonly streamBody?: { readonly contentType: string; readonly description: string };
    /** Largest body accepted, when this route needs more (or less) than limits.max_request_body_bytes. */
    readonly maxBodyBytes?: number;
  };
  readonly responses: R;
  /** Left out of the OpenAPI document (static assets). */
  readonly hidden?: boolean;
  /** Served to a locked account too (client-server "Account locking": the logout endpoints). */
  readonly allowLockedAccount?: boolean;
  /**
   * Refused to a suspended account with 403 M_USER_SUSPENDED (client-server "Account
   * suspension": joining, inviting, sending, changing the profile...).
   */
  readonly refusedWhileSuspended?: boolean;
  handler(
    req: RouteRequest<Static<P>, Static<Q>, Static<B>, A>,
    hs: HomeserverContext,
  ): Promise<NoInfer<Reply<R>>>;
}

/** A route with its types erased, as the route table holds it. */
export interface Route
  extends Omit<RouteDefinition<TSchema, TSchema, TSchema, ResponseMap, AuthRequirement>, 'handler'> {
  handler(
    req: RouteRequest<unknown, unknown, unknown, AuthRequirement>,
    hs: HomeserverContext,
  ): Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
}

/** Identity at run time; gives the handler its types from the schemas. */
export function defineRoute<
  P extends TSchema = EmptyObject,
  Q extends TSchema = EmptyObject,
  B extends TSchema = TUndefined,
  R extends ResponseMap = ResponseMap,
  A extends AuthRequirement = AuthRequirement,
>(route: RouteDefinition<P, Q, B, R, A>): RouteDefinition<P, Q, B, R, A> {
  return route;
}

/** The spec's standard error response, for routes that document their error statuses. */
export const MatrixErrorBody = Type.Object(
  {
    errcode: Type.String({ description: 'An error code.', examples: ['M_UNKNOWN'] }),
    error: Type.String({ description: 'A human-readable error message.' }),
  },
  { description: 'A standard error response.', additionalProperties: true },
);
