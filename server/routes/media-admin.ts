/**
 * Media administration, Synapse-compatible paths (docs admin_api/media_admin_api.md):
 *   POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}
 *   POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}
 *   POST /_synapse/admin/v1/media/io.myelin.retention   (runs the clean-up job now)
 * Quarantined media is never served (404), thumbnails included.
 */
import { Type } from '@sinclair/typebox';
import { MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { defineRoute, MatrixErrorBody, type Route, reply } from '../http/route.js';
import { runMediaRetention } from '../media/retention.js';

const TAGS = ['Server administration'];

function requireAdmin(requester: AuthenticatedUser): void {
  if (!requester.isAdmin) throw MatrixError.forbidden('You are not a server admin');
}

function quarantineRoute(action: 'quarantine' | 'unquarantine'): Route {
  return defineRoute({
    method: 'POST',
    path: `/_synapse/admin/v1/media/${action}/{serverName}/{mediaId}`,
    operationId: `${action}Media`,
    summary:
      action === 'quarantine' ? 'Quarantine media: it is no longer served.' : 'Release quarantined media.',
    tags: TAGS,
    resource: 'client',
    auth: 'access-token',
    rateLimit: 'client',
    request: {
      params: Type.Object({
        serverName: Type.String({ description: 'The server name of the mxc:// URI.' }),
        mediaId: Type.String({ description: 'The media ID of the mxc:// URI.' }),
      }),
    },
    responses: { 200: Type.Object({}, { description: 'Done.' }), 403: MatrixErrorBody, 404: MatrixErrorBody },
    async handler(req, hs) {
      requireAdmin(req.requester);
      await hs.media.setQuarantined(req.params.serverName, req.params.mediaId, action === 'quarantine');
      return reply(200, {});
    },
  }) as Route;
}

const runRetention = defineRoute({
  method: 'POST',
  path: '/_synapse/admin/v1/media/io.myelin.retention',
  operationId: 'runMediaRetention',
  summary: 'Run the media clean-up job now.',
  tags: TAGS,
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  responses: {
    200: Type.Object(
      {
        expired_reservations: Type.Integer({ description: 'Unused /create IDs removed.' }),
        deleted_media: Type.Integer({ description: 'Media removed by the lifetime rule.' }),
        deleted_blobs: Type.Integer({ description: 'Stored files removed because nothing used them.' }),
      },
      { description: 'What the job removed.' },
    ),
    403: MatrixErrorBody,
  },
  async handler(req, hs) {
    requireAdmin(req.requester);
    const report = await runMediaRetention({ config: hs.config, storage: hs.storage, media: hs.media });
    return reply(200, {
      expired_reservations: report.expiredReservations,
      deleted_media: report.deletedMedia,
      deleted_blobs: report.deletedBlobs,
    });
  },
});

export const mediaAdminRoutes: readonly Route[] = [
  quarantineRoute('quarantine'),
  quarantineRoute('unquarantine'),
  runRetention as Route,
];
