/**
 * client-server "Push Notifications", pushers and notifications (pusher.yaml,
 * notifications.yaml):
 *   GET  /_matrix/client/v3/pushers
 *   POST /_matrix/client/v3/pushers/set
 *   GET  /_matrix/client/v3/notifications   (from, limit, only=highlight)
 * Only `http` pushers exist here; email pushers are refused (no email sending).
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import type { PusherRecord } from '../../storage/push-store.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { toClientEvents } from '../rooms/client-event-format.js';
import { ClientEventSchema } from './rooms-read.js';

const common = {
  tags: ['Push notifications'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
} as const;

const PusherData = Type.Object(
  {
    url: Type.Optional(
      Type.String({ description: 'http pushers: the gateway URL, ending in /_matrix/push/v1/notify.' }),
    ),
    format: Type.Optional(
      Type.String({ description: '"event_id_only" sends no event details to the gateway.' }),
    ),
  },
  {
    additionalProperties: true,
    description: 'Data for the pusher implementation; forwarded to the gateway without url.',
  },
);

const PusherSchema = Type.Object(
  {
    pushkey: Type.String(),
    kind: Type.String(),
    app_id: Type.String(),
    app_display_name: Type.String(),
    device_display_name: Type.String(),
    profile_tag: Type.Optional(Type.String()),
    lang: Type.String(),
    data: PusherData,
  },
  { description: 'A pusher.' },
);

function pusherJson(pusher: PusherRecord) {
  return {
    pushkey: pusher.pushkey,
    kind: pusher.kind,
    app_id: pusher.appId,
    app_display_name: pusher.appDisplayName,
    device_display_name: pusher.deviceDisplayName,
    ...(pusher.profileTag !== null ? { profile_tag: pusher.profileTag } : {}),
    lang: pusher.lang,
    data: pusher.data,
  };
}

export const getPushers = defineRoute({
  ...common,
  method: 'GET',
  path: '/_matrix/client/v3/pushers',
  operationId: 'getPushers',
  summary: 'Gets the current pushers for the authenticated user.',
  description: 'All pushers of the user.',
  responses: {
    200: Type.Object({ pushers: Type.Array(PusherSchema) }, { description: 'The pushers.' }),
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    return reply(200, { pushers: (await hs.push.pushers(req.requester.userId)).map(pusherJson) });
  },
});

export const postPusher = defineRoute({
  ...common,
  method: 'POST',
  path: '/_matrix/client/v3/pushers/set',
  operationId: 'postPusher',
  summary: 'Modify a pusher for this user on the homeserver.',
  description:
    'Creates or updates the pusher (app_id, pushkey); `kind: null` deletes it. Without `append`, the same ' +
    'app_id and pushkey is removed from other users. `http` only: data.url must be an HTTPS URL with the path ' +
    '/_matrix/push/v1/notify that this server is allowed to call (config push.*).',
  request: {
    body: Type.Object(
      {
        pushkey: Type.String({ description: 'Unique identifier of the pusher (at most 512 bytes).' }),
        kind: Type.Union([Type.String(), Type.Null()], { description: '"http", or null to delete.' }),
        app_id: Type.String({
          description: 'Reverse-DNS identifier of the application (at most 64 characters).',
        }),
        app_display_name: Type.Optional(Type.String()),
        device_display_name: Type.Optional(Type.String()),
        profile_tag: Type.Optional(Type.String()),
        lang: Type.Optional(Type.String()),
        data: Type.Optional(PusherData),
        append: Type.Optional(
          Type.Boolean({ description: 'Keep pushers of other users with the same app_id and pushkey.' }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object({}, { additionalProperties: false, description: 'The pusher was set.' }),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const body = req.body;
    const { userId, deviceId } = req.requester;
    if (body.kind === null) {
      await hs.push.setPusher(userId, deviceId, { kind: null, appId: body.app_id, pushkey: body.pushkey });
    } else {
      await hs.push.setPusher(userId, deviceId, {
        kind: body.kind,
        appId: body.app_id,
        pushkey: body.pushkey,
        ...(body.app_display_name !== undefined ? { appDisplayName: body.app_display_name } : {}),
        ...(body.device_display_name !== undefined ? { deviceDisplayName: body.device_display_name } : {}),
        ...(body.profile_tag !== undefined ? { profileTag: body.profile_tag } : {}),
        ...(body.lang !== undefined ? { lang: body.lang } : {}),
        ...(body.data !== undefined ? { data: body.data } : {}),
        ...(body.append !== undefined ? { append: body.append } : {}),
      });
    }
    return reply(200, {});
  },
});

/** notifications.yaml: the server's default page size. */
const DEFAULT_NOTIFICATIONS_LIMIT = 20;
const MAX_NOTIFICATIONS_LIMIT = 1000;

export const getNotifications = defineRoute({
  ...common,
  method: 'GET',
  path: '/_matrix/client/v3/notifications',
  operationId: 'getNotifications',
  summary: 'Gets a list of events that the user has been notified about.',
  description:
    "Newest first. `from` is the previous page's next_token; `only=highlight` keeps highlights only.",
  request: {
    query: Type.Object({
      from: Type.Optional(Type.String({ description: 'Pagination token from a previous next_token.' })),
      limit: Type.Optional(Type.Integer({ minimum: 0, description: 'Maximum notifications to return.' })),
      only: Type.Optional(Type.String({ description: '"highlight": only highlighted notifications.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        next_token: Type.Optional(Type.String()),
        notifications: Type.Array(
          Type.Object({
            actions: Type.Array(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
            event: ClientEventSchema,
            profile_tag: Type.Optional(Type.String()),
            read: Type.Boolean(),
            room_id: Type.String(),
            ts: Type.Integer(),
          }),
        ),
      },
      { description: 'A batch of notifications.' },
    ),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { query } = req;
    let before: number | undefined;
    if (query.from !== undefined && query.from !== '') {
      if (!/^[0-9]{1,15}$/.test(query.from)) throw MatrixError.invalidParam('Invalid from token');
      before = Number(query.from);
    }
    const limit = Math.min(
      query.limit === undefined || query.limit === 0 ? DEFAULT_NOTIFICATIONS_LIMIT : query.limit,
      MAX_NOTIFICATIONS_LIMIT,
    );
    const records = await hs.storage.push.notificationsOf(req.requester.userId, {
      ...(before !== undefined ? { before } : {}),
      limit,
      onlyHighlight: query.only === 'highlight',
    });
    const stored = await hs.storage.events.getEvents(records.map((record) => record.eventId));
    const found = records.filter((record) => stored.has(record.eventId));
    const events = await toClientEvents(
      hs,
      found.map((record) => stored.get(record.eventId)!),
      req.requester,
    );
    const notifications = found.map((record, i) => ({
      actions: record.actions as (string | JsonObject)[],
      event: events[i]!,
      read: record.read,
      room_id: record.roomId,
      ts: record.ts,
    }));
    const last = records.at(-1);
    return reply(200, {
      ...(records.length === limit && last !== undefined ? { next_token: String(last.streamOrdering) } : {}),
      notifications,
    });
  },
});

export const pusherRoutes = [getPushers, postPusher, getNotifications];
