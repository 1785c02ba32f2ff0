/**
 * The OpenAPI 3.1 document, generated from the route table: the same schemas
 * that validate requests at the edge describe them here, so the two cannot
 * drift. Error responses every route can give (bad request, missing token,
 * rate limit) are added from the route's declared auth, rate limit and inputs.
 */
import type { TObject, TSchema } from '@sinclair/typebox';
import {
  type AuthRequirement,
  isRawResponse,
  MatrixErrorBody,
  type ResponseSpec,
  type Route,
} from '../http/route.js';

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { title: string; version: string; description: string };
  readonly paths: Record<string, Record<string, OpenApiOperation>>;
  readonly components: Record<string, unknown>;
  readonly tags: { name: string }[];
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: Record<string, string[]>[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

/** The Matrix specification release the document describes. */
const SPEC_VERSION = '1.19';

const ERROR_REF = { $ref: '#/components/schemas/MatrixError' };

const SECURITY_SCHEMES = {
  accessTokenBearer: {
    type: 'http',
    scheme: 'bearer',
    description: 'The access token from registration or login, as `Authorization: Bearer <token>`.',
  },
  accessTokenQuery: {
    type: 'apiKey',
    in: 'query',
    name: 'access_token',
    description: '**Deprecated.** The access token as a query parameter.',
  },
  signedRequest: {
    type: 'http',
    scheme: 'X-Matrix',
    description: 'The `Authorization: X-Matrix` header of server-server request authentication.',
  },
};

const ACCESS_TOKEN: Record<string, string[]>[] = [{ accessTokenBearer: [] }, { accessTokenQuery: [] }];
const SECURITY_BY_AUTH: Record<AuthRequirement, Record<string, string[]>[] | undefined> = {
  none: undefined,
  optional: [{}, ...ACCESS_TOKEN],
  'access-token': ACCESS_TOKEN,
  'x-matrix': [{ signedRequest: [] }],
};

export function buildOpenApiDocument(routes: readonly Route[]): OpenApiDocument {
  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  const tags = new Set<string>();
  for (const route of routes) {
    if (route.hidden) continue;
    for (const tag of route.tags) tags.add(tag);
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operationOf(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Myelin',
      version: SPEC_VERSION,
      description:
        'The Matrix Client-Server and Server-Server endpoints this homeserver serves, generated from its route table.\n\n' +
        'Besides HTTP, clients may use one WebSocket, `GET /_matrix/client/unstable/io.myelin/ws` (tag WebSocket): ' +
        'it pushes sync deltas (the same JSON as `/sync`, with `next_batch`) the moment they exist and carries any ' +
        'client API call as a JSON frame with a request ID, answered exactly as over HTTP. Its frames, close codes ' +
        'and examples are documented in `spec/websocket.md` of the Myelin repository.',
    },
    paths,
    components: {
      securitySchemes: SECURITY_SCHEMES,
      schemas: { MatrixError: plainSchema(MatrixErrorBody) },
    },
    tags: [...tags].map((name) => ({ name })),
  };
}

function operationOf(route: Route): OpenApiOperation {
  const request = route.request ?? {};
  const operation: OpenApiOperation = {
    operationId: route.operationId,
    summary: route.summary,
    tags: [...route.tags],
    responses: {},
  };
  if (route.description) operation.description = route.description;
  const security = SECURITY_BY_AUTH[route.auth];
  if (security) operation.security = security;

  const parameters = [...parametersOf(request.params, 'path'), ...parametersOf(request.query, 'query')];
  if (parameters.length > 0) operation.parameters = parameters;
  if (request.body) {
    operation.requestBody = {
      required: !request.allowEmptyBody,
      content: { 'application/json': { schema: plainSchema(request.body) } },
    };
  }
  if (request.streamBody) {
    operation.requestBody = {
      required: true,
      description: request.streamBody.description,
      content: { [request.streamBody.contentType]: { schema: { type: 'string', format: 'binary' } } },
    };
  }

  for (const [status, spec] of Object.entries(route.responses)) {
    operation.responses[status] = responseOf(spec as ResponseSpec, Number(status));
  }
  const hasInput = request.params || request.query || request.body;
  addError(
    operation,
    400,
    'The request is malformed (M_BAD_JSON, M_NOT_JSON, M_MISSING_PARAM, M_INVALID_PARAM).',
    hasInput,
  );
  addError(
    operation,
    413,
    'The request body is too large (M_TOO_LARGE).',
    request.body ?? request.streamBody,
  );
  addError(
    operation,
    401,
    'The request is not authenticated (M_MISSING_TOKEN, M_UNKNOWN_TOKEN).',
    route.auth !== 'none',
  );
  addError(
    operation,
    429,
    'Too many requests (M_LIMIT_EXCEEDED); see the Retry-After header.',
    route.rateLimit !== 'none',
  );
  return operation;
}

function parametersOf(schema: TSchema | undefined, where: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  const object = schema as TObject;
  const required = new Set(object.required ?? []);
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = plainSchema(property);
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

function responseOf(spec: ResponseSpec, status: number): unknown {
  if (isRawResponse(spec)) {
    return { description: spec.description, content: { [spec.contentType]: { schema: { type: 'string' } } } };
  }
  if (spec === MatrixErrorBody)
    return { description: 'An error.', content: { 'application/json': { schema: ERROR_REF } } };
  const schema = plainSchema(spec);
  const description = typeof schema.description === 'string' ? schema.description : `Status ${status}.`;
  return { description, content: { 'application/json': { schema } } };
}

function addError(operation: OpenApiOperation, status: number, description: string, applies: unknown): void {
  if (!applies || operation.responses[status]) return;
  operation.responses[status] = { description, content: { 'application/json': { schema: ERROR_REF } } };
}

/** TypeBox keeps its bookkeeping under symbol keys; JSON drops them, leaving plain JSON Schema. */
function plainSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}
