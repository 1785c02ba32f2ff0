/**
 * client-server "Mutual rooms" (mutual_rooms.yaml):
 *   GET /_matrix/client/v1/mutual_rooms?user_id=…&from=…
 * The rooms both the requester and `user_id` are joined to, in batches. The
 * token is the last room ID of the previous batch (rooms are listed in room ID
 * order, so a batch boundary stays put while memberships change).
 */
import { Type } from '@sinclair/typebox';
import { isValidUserId } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

/** Rooms per batch: enough for any client's "rooms in common" list in one call. */
const BATCH_SIZE = 100;

export const getMutualRooms = defineRoute({
  method: 'GET',
  path: '/_matrix/client/v1/mutual_rooms',
  operationId: 'getMutualRooms',
  summary: 'Get the list of rooms that the user shares with another user.',
  description:
    'The room IDs where both the requester and `user_id` are joined. An unknown user shares no rooms.',
  tags: ['Mutual Rooms'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    query: Type.Object({
      user_id: Type.String({ description: 'The user to check for mutual rooms with.' }),
      from: Type.Optional(Type.String({ description: 'A `next_batch` token from a previous call.' })),
    }),
  },
  responses: {
    200: Type.Object(
      {
        joined: Type.Array(Type.String(), { description: 'Rooms both users are joined to.' }),
        count: Type.Integer({ description: 'How many such rooms there are in all.' }),
        next_batch: Type.Optional(Type.String({ description: 'Where the next batch starts, if any.' })),
      },
      { description: 'The rooms the users share.' },
    ),
    400: MatrixErrorBody,
    401: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { user_id: otherUser, from } = req.query;
    if (!isValidUserId(otherUser, { historical: true })) {
      throw MatrixError.invalidParam('user_id is not a valid user ID');
    }
    if (otherUser === req.requester.userId) {
      throw MatrixError.invalidParam('user_id must be another user than yourself');
    }
    if (from !== undefined && !from.startsWith('!')) throw MatrixError.invalidParam('Invalid from token');
    const [mine, theirs] = await Promise.all([
      hs.rooms.reads.joinedRooms(req.requester.userId),
      hs.rooms.reads.joinedRooms(otherUser),
    ]);
    const theirSet = new Set(theirs);
    const shared = mine.filter((roomId) => theirSet.has(roomId)).sort();
    const start = from === undefined ? 0 : shared.findIndex((roomId) => roomId > from);
    const batch = start < 0 ? [] : shared.slice(start, start + BATCH_SIZE);
    const last = batch.at(-1);
    const more = last !== undefined && last !== shared.at(-1);
    return reply(200, {
      joined: batch,
      count: shared.length,
      ...(more ? { next_batch: last } : {}),
    });
  },
});

export const mutualRoomsRoutes = [getMutualRooms];
