/**
 * The rooms domain, composed once per Homeserver: the send path, room creation,
 * membership changes, redactions, upgrades, content reports and current-state reads,
 * sharing one sender and its caches.
 */
import type { Logger } from 'pino';
import type { SigningKey } from '../../protocol/signing.js';
import { isStorageError } from '../../storage/errors.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import { type ContentReports, createContentReports } from './content-reports.js';
import { RoomMembership } from './membership.js';
import { RoomRedactions } from './redactions.js';
import {
  type CreatedRoom,
  type CreateRoomRequest,
  createRoom,
  type RoomAliasRegistry,
} from './room-creation.js';
import { type PersistedRoomEvent, RoomEventSender } from './room-event-sender.js';
import { RoomReads } from './room-reads.js';
import { type UpgradeRoomRequest, upgradeRoom } from './room-upgrade.js';

export interface RoomServicesOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  /** The alias table, or how to find it once the directory exists (it may be built after the rooms). */
  readonly aliases?: RoomAliasRegistry | (() => RoomAliasRegistry | undefined);
  readonly now?: () => number;
  readonly onListenerError?: (error: unknown, persisted: PersistedRoomEvent) => void;
  readonly log?: Pick<Logger, 'warn'>;
}

export interface RoomServices {
  readonly sender: RoomEventSender;
  readonly membership: RoomMembership;
  readonly reads: RoomReads;
  readonly redactions: RoomRedactions;
  readonly reports: ContentReports;
  createRoom(creator: string, request: CreateRoomRequest): Promise<CreatedRoom>;
  /** @returns the replacement room's ID. */
  upgradeRoom(request: UpgradeRoomRequest): Promise<string>;
  /** Waits for queued sends (call before closing storage). */
  close(): Promise<void>;
}

const silent: Pick<Logger, 'warn'> = { warn: () => {} };

export function createRoomServices(options: RoomServicesOptions): RoomServices {
  const log = options.log ?? silent;
  const sender = new RoomEventSender(options);
  const storedAliases = storageAliasRegistry(options.storage);
  const aliasRegistry = (): RoomAliasRegistry =>
    (typeof options.aliases === 'function' ? options.aliases() : options.aliases) ?? storedAliases;
  const aliases: RoomAliasRegistry = {
    assertAvailable: (alias) => aliasRegistry().assertAvailable(alias),
    register: (alias, roomId, creator) => aliasRegistry().register(alias, roomId, creator),
  };
  const deps = { storage: options.storage, sender, aliases };
  const reads = new RoomReads(options.storage);
  const create = (creator: string, request: CreateRoomRequest) => createRoom(deps, creator, request);
  return {
    sender,
    membership: new RoomMembership(options.storage, sender, reads, options.serverName),
    reads,
    redactions: new RoomRedactions(options.storage, sender, reads),
    reports: createContentReports(options.storage, log),
    createRoom: create,
    upgradeRoom: (request) =>
      upgradeRoom({ storage: options.storage, sender, reads, createRoom: create, log }, request),
    async close() {
      await sender.idle();
    },
  };
}

/** Until the directory supplies its registry: the alias table of storage, as is. */
function storageAliasRegistry(storage: Storage): RoomAliasRegistry {
  const taken = (alias: string) => MatrixError.of('M_ROOM_IN_USE', `Room alias ${alias} already taken`);
  return {
    async assertAvailable(alias) {
      if ((await storage.rooms.getAlias(alias)) !== null) throw taken(alias);
    },
    async register(alias, roomId, creator) {
      try {
        await storage.rooms.createAlias({ alias, roomId, creator, createdTs: Date.now() });
      } catch (error) {
        if (isStorageError(error, 'CONFLICT')) throw taken(alias);
        throw error;
      }
    },
  };
}
