/**
 * client-server "Fully read markers" (read_markers.yaml):
 *   POST /_matrix/client/v3/rooms/{roomId}/read_markers
 * Sets the fully read marker (m.fully_read room account data) and, in the same
 * call, the m.read and m.read.private receipts, each exactly as /receipt would.
 */
import { Type } from '@sinclair/typebox';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';
import { FULLY_READ, RECEIPT_READ, RECEIPT_READ_PRIVATE } from '../rooms/receipts.js';
import { checkReceiptTarget } from './receipts.js';

const MARKER_TYPES = [FULLY_READ, RECEIPT_READ, RECEIPT_READ_PRIVATE] as const;

export const setReadMarker = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/rooms/{roomId}/read_markers',
  operationId: 'setReadMarker',
  summary: 'Set the position of the read marker for a room.',
  description:
    'Sets the fully read marker and, optionally, the read receipt and private read receipt. ' +
    'Every event named is checked before any marker moves; markers only move forward. ' +
    'A body naming none of the three changes nothing.',
  tags: ['Read Markers'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      roomId: Type.String({ description: 'The room ID to set the read marker in for the user.' }),
    }),
    body: Type.Object(
      {
        'm.fully_read': Type.Optional(
          Type.String({ description: 'The event ID the read marker should be located at.' }),
        ),
        'm.read': Type.Optional(
          Type.String({ description: 'The event ID to set the read receipt location at.' }),
        ),
        'm.read.private': Type.Optional(
          Type.String({ description: 'The event ID to set the private read receipt location at.' }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {},
      { description: 'The read marker, and read receipt(s) if provided, have been updated.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    404: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { roomId } = req.params;
    const userId = req.requester.userId;
    const markers: { receiptType: string; eventId: string }[] = [];
    for (const receiptType of MARKER_TYPES) {
      const eventId = req.body[receiptType];
      if (eventId !== undefined) markers.push({ receiptType, eventId });
    }
    for (const marker of markers) await checkReceiptTarget(hs, userId, roomId, marker.eventId);
    for (const marker of markers) {
      await hs.receipts.setReceipt({ roomId, userId, ...marker });
      if (marker.receiptType === 'm.read')
        hs.federation.announce.readReceipt(roomId, userId, marker.eventId, null);
    }
    return reply(200, {});
  },
});

export const readMarkerRoutes = [setReadMarker];
