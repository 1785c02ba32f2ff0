/**
 * Room aliases and the published room directory (client-server "Room aliases", "Published
 * room directory", "Spaces"): the alias table createRoom registers into, alias resolution for
 * joins, who may create and delete aliases or publish a room, the checks on
 * m.room.canonical_alias content, and the entry points of /publicRooms and /hierarchy.
 *
 * Permissions follow Synapse where the spec leaves them to the server: creating an alias
 * needs membership of the room (server admins excepted); deleting one needs to be its
 * creator, a server admin, or a member able to send m.room.canonical_alias; publishing a
 * room needs the same power (or server admin). Guests may do none of these.
 */
import type { JsonObject, RoomEvent } from '../../protocol/events.js';
import {
  parseRoomAlias,
  type RoomAlias,
  serverNameOfId as serverNameOf,
} from '../../protocol/identifiers.js';
import { powerLevelsOf, requiredPowerLevelForEvent, userPowerLevel } from '../../protocol/power-levels.js';
import { isStorageError } from '../../storage/errors.js';
import type { Storage } from '../../storage/storage.js';
import { isMatrixError, MatrixError } from '../errors.js';
import type { AuthenticatedUser } from '../http/auth.js';
import { listPublicRooms, type PublicRoomsPage, type PublicRoomsQuery } from './public-rooms.js';
import type { RoomAliasRegistry } from './room-creation.js';
import type { RoomEventSender } from './room-event-sender.js';
import { roomVersionOfCreateEvent } from './room-head.js';
import { RoomSummaries } from './room-summaries.js';
import {
  type FederationHierarchy,
  type HierarchyPage,
  type HierarchyQuery,
  type RemoteHierarchySource,
  SpaceHierarchy,
} from './space-hierarchy.js';

export interface ResolvedAlias {
  readonly room_id: string;
  readonly servers: string[];
}

export type DirectoryVisibility = 'public' | 'private';

/** Who asks: the parts of an authenticated user the directory's permission rules look at. */
export type DirectoryRequester = Pick<AuthenticatedUser, 'userId' | 'isGuest' | 'isAdmin'>;

export interface RoomDirectoryOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly now?: () => number;
}

const CANONICAL_ALIAS = 'm.room.canonical_alias';

/** Any valid alias, or M_INVALID_PARAM. */
function parsedAlias(text: string): ReturnType<typeof parseRoomAlias> {
  try {
    return parseRoomAlias(text);
  } catch {
    throw MatrixError.invalidParam(`Invalid room alias: ${JSON.stringify(text)}`);
  }
}

/** An alias of this server, or M_INVALID_PARAM (bad grammar, or another server's alias). */
export function localAlias(text: string, serverName: string): RoomAlias {
  const parsed = parsedAlias(text);
  if (parsed.serverName !== serverName) {
    throw MatrixError.invalidParam(`Room alias ${text} is not on this server (${serverName})`);
  }
  return parsed.roomAlias;
}

export class RoomDirectory implements RoomAliasRegistry {
  readonly serverName: string;
  /** Cached room summaries for the directory and hierarchies; call invalidate for state changes the sender does not see. */
  readonly summaries: RoomSummaries;
  private readonly storage: Storage;
  private readonly now: () => number;
  private readonly spaces: SpaceHierarchy;
  private sender: RoomEventSender | undefined;
  /** Asked about a local alias nobody made (application services): true once it exists. */
  private unknownAliasProvider: ((alias: RoomAlias) => Promise<boolean>) | undefined;

  constructor(options: RoomDirectoryOptions) {
    this.storage = options.storage;
    this.serverName = options.serverName;
    this.now = options.now ?? Date.now;
    this.summaries = new RoomSummaries({ storage: options.storage });
    this.spaces = new SpaceHierarchy(options.storage, this.summaries, options.serverName);
  }

  /**
   * Connects the send path, composed after the directory (createRoom registers aliases here):
   * summaries follow the rooms' state, and deleting an alias can update m.room.canonical_alias.
   * Returns an unsubscribe.
   */
  follow(sender: RoomEventSender): () => void {
    this.sender = sender;
    return this.summaries.follow(sender);
  }

  // ---- Aliases ----

  /**
   * The room an alias names and servers that can help join it (this one first, then the
   * servers of the room's joined members); null when the alias is unknown or invalid.
   * Aliases of other servers are null until federation queries them.
   */
  async resolveAlias(alias: string): Promise<ResolvedAlias | null> {
    let parsed: ReturnType<typeof parseRoomAlias>;
    try {
      parsed = parseRoomAlias(alias);
    } catch {
      return null;
    }
    if (parsed.serverName !== this.serverName) return null;
    let record = await this.storage.rooms.getAlias(parsed.roomAlias);
    if (record === null && (await this.unknownAliasProvider?.(parsed.roomAlias)) === true) {
      record = await this.storage.rooms.getAlias(parsed.roomAlias);
    }
    if (record === null) return null;
    return { room_id: record.roomId, servers: await this.serversInRoom(record.roomId) };
  }

  /**
   * application-service "Querying": an unknown local alias is first offered to `provider`
   * (which may create it); it resolves to true when the alias should be looked up again.
   */
  provideUnknownAliases(provider: (alias: RoomAlias) => Promise<boolean>): void {
    this.unknownAliasProvider = provider;
  }

  /**
   * GET /directory/room/{roomAlias}.
   * @throws MatrixError M_INVALID_PARAM (grammar; another server's alias needs federation), M_NOT_FOUND.
   */
  async getAlias(aliasText: string): Promise<ResolvedAlias> {
    const parsed = parsedAlias(aliasText);
    if (parsed.serverName !== this.serverName) {
      throw MatrixError.invalidParam(
        `Resolving ${aliasText} needs a query to ${parsed.serverName} over federation, which this server does not do yet`,
      );
    }
    const resolved = await this.resolveAlias(parsed.roomAlias);
    if (resolved === null) throw MatrixError.notFound(`Room alias ${aliasText} not found`);
    return resolved;
  }

  /** This server first, then the other servers with joined members, in order of first appearance. */
  async serversInRoom(roomId: string): Promise<string[]> {
    const servers = new Set<string>([this.serverName]);
    for (const member of await this.storage.memberships.membersOfRoom(roomId)) {
      servers.add(serverNameOf(member.userId));
    }
    return [...servers];
  }

  async assertAvailable(alias: RoomAlias): Promise<void> {
    if ((await this.storage.rooms.getAlias(alias)) !== null) {
      throw MatrixError.of('M_ROOM_IN_USE', `Room alias ${alias} already exists`);
    }
  }

  /** Maps the alias to the room (createRoom); M_ROOM_IN_USE when someone took it meanwhile. */
  async register(alias: RoomAlias, roomId: string, creator: string): Promise<void> {
    try {
      await this.storage.rooms.createAlias({ alias, roomId, creator, createdTs: this.now() });
    } catch (e) {
      if (isStorageError(e, 'CONFLICT')) {
        throw MatrixError.of('M_ROOM_IN_USE', `Room alias ${alias} already exists`);
      }
      throw e;
    }
  }

  /**
   * PUT /directory/room/{roomAlias}.
   * @throws MatrixError M_INVALID_PARAM (grammar, whitespace, another server), M_UNKNOWN 400 (no
   *   such room, as Synapse), M_FORBIDDEN (not in the room), 409 M_UNKNOWN (alias taken).
   */
  async createAlias(requester: DirectoryRequester, aliasText: string, roomId: string): Promise<void> {
    refuseGuests(requester, 'create room aliases');
    const alias = localAlias(aliasText, this.serverName);
    // As createRoom's room_alias_name (and Synapse for whitespace): a localpart, without whitespace.
    const localpart = alias.slice(1, alias.indexOf(':'));
    if (localpart === '' || /\s/u.test(localpart)) {
      throw MatrixError.invalidParam('A room alias needs a localpart without whitespace');
    }
    if ((await this.storage.state.currentStateEventId(roomId, 'm.room.create', '')) === null) {
      throw MatrixError.of('M_UNKNOWN', `Room ${roomId} does not exist`);
    }
    if (!requester.isAdmin && (await this.membership(roomId, requester.userId)) !== 'join') {
      throw MatrixError.forbidden('You must be in the room to create an alias for it');
    }
    try {
      await this.storage.rooms.createAlias({
        alias,
        roomId,
        creator: requester.userId,
        createdTs: this.now(),
      });
    } catch (e) {
      if (isStorageError(e, 'CONFLICT')) {
        // directory.yaml: 409, with M_UNKNOWN in the spec's example.
        throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
      }
      throw e;
    }
  }

  /**
   * DELETE /directory/room/{roomAlias}: removes the mapping, then (as Synapse, and as the spec
   * suggests) takes the alias out of m.room.canonical_alias when it is there, in the
   * requester's name; the deletion stands even if they may not send that event.
   * @throws MatrixError M_INVALID_PARAM, M_NOT_FOUND, M_FORBIDDEN.
   */
  async deleteAlias(requester: DirectoryRequester, aliasText: string): Promise<void> {
    refuseGuests(requester, 'delete room aliases');
    const alias = localAlias(aliasText, this.serverName);
    const record = await this.storage.rooms.getAlias(alias);
    if (record === null) throw MatrixError.notFound(`Room alias ${alias} not found`);
    const allowed =
      record.creator === requester.userId ||
      requester.isAdmin ||
      (await this.mayChangeRoomDirectory(record.roomId, requester.userId));
    if (!allowed) throw MatrixError.forbidden("You don't have permission to delete the alias");
    try {
      await this.storage.rooms.deleteAlias(alias);
    } catch (e) {
      if (isStorageError(e, 'NOT_FOUND')) throw MatrixError.notFound(`Room alias ${alias} not found`);
      throw e;
    }
    await this.removeFromCanonicalAlias(requester.userId, record.roomId, alias);
  }

  /** GET /rooms/{roomId}/aliases: for the room's members, server admins, or anyone when world readable. */
  async aliasesOfRoom(requester: DirectoryRequester, roomId: string): Promise<string[]> {
    if (!requester.isAdmin && (await this.membership(roomId, requester.userId)) !== 'join') {
      const summary = await this.summaries.summary(roomId);
      if (summary?.worldReadable !== true) {
        throw MatrixError.forbidden(`You are not in the room ${roomId}, and it is not world readable`);
      }
    }
    return (await this.storage.rooms.aliasesOfRoom(roomId)).map((record) => record.alias);
  }

  /**
   * For PUT /state of m.room.canonical_alias (room_state.yaml 400s): every alias must be valid
   * (M_INVALID_PARAM) and every alias of this server must point to the room (M_BAD_ALIAS).
   * Aliases of other servers are only checked for grammar until federation can resolve them.
   */
  async checkCanonicalAlias(roomId: string, content: JsonObject): Promise<void> {
    const aliases: string[] = [];
    const alias = content.alias;
    if (alias !== undefined && alias !== null && alias !== '') {
      if (typeof alias !== 'string') throw MatrixError.invalidParam('alias must be a string');
      aliases.push(alias);
    }
    const alt = content.alt_aliases;
    if (alt !== undefined) {
      if (!Array.isArray(alt) || !alt.every((entry): entry is string => typeof entry === 'string')) {
        throw MatrixError.invalidParam('alt_aliases must be a list of room aliases');
      }
      aliases.push(...alt);
    }
    for (const text of aliases) {
      const parsed = parsedAlias(text);
      if (parsed.serverName !== this.serverName) continue;
      const record = await this.storage.rooms.getAlias(parsed.roomAlias);
      if (record?.roomId !== roomId) {
        throw MatrixError.of('M_BAD_ALIAS', `The alias ${text} does not point to this room`);
      }
    }
  }

  // ---- Published room directory ----

  /** GET /directory/list/room/{roomId}; M_NOT_FOUND for a room this server does not record. */
  async visibility(roomId: string): Promise<DirectoryVisibility> {
    const room = await this.storage.rooms.getRoom(roomId);
    if (room === null) throw MatrixError.notFound(`Room ${roomId} not found`);
    return room.isPublic ? 'public' : 'private';
  }

  /**
   * PUT /directory/list/room/{roomId}: server admins, or members able to send
   * m.room.canonical_alias (Synapse's "moderator" rule).
   * @throws MatrixError M_GUEST_ACCESS_FORBIDDEN, M_NOT_FOUND, M_FORBIDDEN.
   */
  async setVisibility(
    requester: DirectoryRequester,
    roomId: string,
    visibility: DirectoryVisibility,
  ): Promise<void> {
    refuseGuests(requester, 'edit the published room directory');
    const room = await this.storage.rooms.getRoom(roomId);
    if (room === null) throw MatrixError.notFound(`Room ${roomId} not found`);
    if (!requester.isAdmin && !(await this.mayChangeRoomDirectory(roomId, requester.userId))) {
      throw MatrixError.forbidden(
        "Changing a room's directory visibility needs the power to send m.room.canonical_alias in it",
      );
    }
    if (room.isPublic === (visibility === 'public')) return;
    try {
      await this.storage.rooms.setRoomPublic(roomId, visibility === 'public');
    } catch (e) {
      if (isStorageError(e, 'NOT_FOUND')) throw MatrixError.notFound(`Room ${roomId} not found`);
      throw e;
    }
  }

  /** GET/POST /publicRooms on this server's list. */
  publicRooms(query: PublicRoomsQuery): Promise<PublicRoomsPage> {
    return listPublicRooms(this.storage, this.summaries, query);
  }

  /** GET /rooms/{roomId}/hierarchy. */
  hierarchy(query: HierarchyQuery): Promise<HierarchyPage> {
    return this.spaces.hierarchy(query);
  }

  /** Federation GET /hierarchy/{roomId}, for the server `origin`. */
  federationHierarchy(roomId: string, origin: string, suggestedOnly: boolean): Promise<FederationHierarchy> {
    return this.spaces.federationHierarchy(roomId, origin, suggestedOnly);
  }

  /** Connects federation: hierarchies reach rooms this server is not in through other servers. */
  useRemoteHierarchy(source: RemoteHierarchySource): void {
    this.spaces.useRemote(source);
  }

  // ---- Room state the rules above read ----

  private async stateEvent(roomId: string, type: string, stateKey: string): Promise<RoomEvent | undefined> {
    const eventId = await this.storage.state.currentStateEventId(roomId, type, stateKey);
    if (eventId === null) return undefined;
    return (await this.storage.events.getEvent(eventId)) ?? undefined;
  }

  private async membership(roomId: string, userId: string): Promise<string | null> {
    const membership = (await this.stateEvent(roomId, 'm.room.member', userId))?.pdu.content.membership;
    return typeof membership === 'string' ? membership : null;
  }

  /** Joined, with a power level at least the one m.room.canonical_alias needs (Synapse check_can_change_room_list). */
  private async mayChangeRoomDirectory(roomId: string, userId: string): Promise<boolean> {
    if ((await this.membership(roomId, userId)) !== 'join') return false;
    const [create, powerLevels] = await Promise.all([
      this.stateEvent(roomId, 'm.room.create', ''),
      this.stateEvent(roomId, 'm.room.power_levels', ''),
    ]);
    if (create === undefined) return false;
    try {
      const rules = roomVersionOfCreateEvent(create);
      const needed = requiredPowerLevelForEvent(powerLevelsOf(powerLevels, rules), CANONICAL_ALIAS, true);
      return userPowerLevel(userId, powerLevels, create, rules) >= needed;
    } catch {
      // Power levels this room version cannot parse grant nothing.
      return false;
    }
  }

  /** Synapse's _update_canonical_alias: drops the alias from `alias` and `alt_aliases`, if present. */
  private async removeFromCanonicalAlias(userId: string, roomId: string, alias: string): Promise<void> {
    if (this.sender === undefined || serverNameOf(userId) !== this.serverName) return;
    const event = await this.stateEvent(roomId, CANONICAL_ALIAS, '');
    if (event === undefined) return;
    const content: JsonObject = { ...event.pdu.content };
    let changed = false;
    if (content.alias === alias) {
      delete content.alias;
      changed = true;
    }
    const alt = content.alt_aliases;
    if (Array.isArray(alt) && alt.includes(alias)) {
      const rest = alt.filter((entry) => entry !== alias);
      if (rest.length > 0) content.alt_aliases = rest;
      else delete content.alt_aliases;
      changed = true;
    }
    if (!changed) return;
    try {
      await this.sender.sendEvent({ roomId, sender: userId, type: CANONICAL_ALIAS, stateKey: '', content });
    } catch (e) {
      // directory.yaml: the alias is deleted even when the requester may not update the event.
      if (!isMatrixError(e)) throw e;
    }
  }
}

function refuseGuests(requester: DirectoryRequester, what: string): void {
  if (requester.isGuest) throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', `Guests cannot ${what}`);
}

export function createRoomDirectory(options: RoomDirectoryOptions): RoomDirectory {
  return new RoomDirectory(options);
}
