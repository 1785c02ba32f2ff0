/**
 * The io.myelin WebSocket endpoint (not part of the Matrix spec; spec/websocket.md):
 *   GET /_matrix/client/unstable/io.myelin/ws
 * The WebSocket itself is served from the listener's 'upgrade' event
 * (ws/gateway.ts); this declaration documents it and answers a plain GET.
 */
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { WEBSOCKET_PATH } from '../ws/gateway.js';

export const getWebSocket = defineRoute({
  method: 'GET',
  path: WEBSOCKET_PATH,
  operationId: 'openWebSocket',
  summary: 'Opens the WebSocket that pushes sync deltas and carries client calls.',
  description:
    'Send a WebSocket upgrade request (`Connection: Upgrade`, `Upgrade: websocket`). Authenticate with ' +
    '`Authorization: Bearer <token>` on the upgrade request, or with a first frame ' +
    '`{"type":"auth","access_token":"<token>"}`. Then `{"type":"sync","since":...}` starts a stream of ' +
    '`{"type":"sync","body":<the /sync response>}` frames, and `{"type":"request","id":...,"method":...,' +
    '"path":...,"body":...}` runs any client API call, answered `{"type":"response","id":...,"status":...,' +
    '"body":...}` exactly as over HTTP. Frames, close codes and examples: spec/websocket.md. ' +
    'A plain GET without the upgrade is answered 426.',
  tags: ['WebSocket'],
  resource: 'client',
  auth: 'none',
  rateLimit: 'none',
  responses: {
    426: {
      ...MatrixErrorBody,
      description: 'Not a WebSocket upgrade request.',
    },
  },
  async handler() {
    return reply(426, {
      errcode: 'M_UNRECOGNIZED',
      error: 'This endpoint speaks WebSocket: send an upgrade request (see spec/websocket.md).',
    });
  },
});

export const webSocketRoutes = [getWebSocket];
