/**
 * What a route handler may use: the parts of one Homeserver, built by
 * createHomeserver and handed to every handler. Later issues add their
 * services here (rooms, sync, media...).
 */
import type { Logger } from 'pino';
import type { SigningKey } from '../protocol/signing.js';
import type { Storage } from '../storage/storage.js';
import type { MyelinConfig } from './config/index.js';
import type { OpenApiDocument } from './openapi/document.js';

export interface HomeserverContext {
  readonly config: MyelinConfig;
  readonly log: Logger;
  readonly storage: Storage;
  readonly signingKey: SigningKey;
  /** Aborted when the server begins to stop. */
  readonly shutdownSignal: AbortSignal;
  /** The OpenAPI document of every route this server declares (built on first use). */
  openApiDocument(): OpenApiDocument;
}
