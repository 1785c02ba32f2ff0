/**
 * client-server "Send-to-Device messaging" (to_device.yaml):
 *   PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
 * Idempotent per device, event type and transaction ID (spec "Transaction
 * identifiers": same path, same device). Messages reach the devices' syncs and
 * WebSockets; unknown local users and devices are skipped, as Synapse does.
 */
import { Type } from '@sinclair/typebox';
import type { JsonObject } from '../../protocol/events.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

const MessagesBody = Type.Object(
  {
    messages: Type.Record(
      Type.String(),
      Type.Record(
        Type.String(),
        Type.Record(Type.String(), Type.Unknown(), { description: 'Message content.' }),
        {
          description: 'Device ID (or `*` for all known devices of the user) to message content.',
        },
      ),
      { description: 'User ID to a map of device ID to message content.' },
    ),
  },
  { description: 'The messages to send.' },
);

export const sendToDevice = defineRoute({
  method: 'PUT',
  path: '/_matrix/client/v3/sendToDevice/{eventType}/{txnId}',
  operationId: 'sendToDevice',
  summary: 'Send an event to a given set of devices.',
  description:
    'Stores one message per recipient device (`*`: every device of the user), delivered in /sync `to_device` and ' +
    'over the WebSocket until the device syncs past it. The same transaction ID from the same device is stored once.',
  tags: ['Send-to-Device messaging'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    params: Type.Object({
      eventType: Type.String({ description: 'The type of event to send.' }),
      txnId: Type.String({ description: 'The transaction ID for this event.' }),
    }),
    body: MessagesBody,
  },
  responses: {
    200: Type.Object({}, { description: 'The message was successfully sent.', additionalProperties: false }),
    400: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    const { eventType, txnId } = req.params;
    if (eventType === '') throw MatrixError.invalidParam('The event type must not be empty');
    if (txnId === '') throw MatrixError.invalidParam('The transaction ID must not be empty');
    await hs.toDevice.send(req.requester, {
      type: eventType,
      txnId,
      messages: req.body.messages as Record<string, Record<string, JsonObject>>,
    });
    return reply(200, {});
  },
});

export const toDeviceRoutes = [sendToDevice];
