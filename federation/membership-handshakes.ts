/**
 * Membership handshakes both ways (server-server "Joining Rooms", "Leaving Rooms",
 * "Inviting to a room"):
 *   resident side: make_join/send_join (v2), make_leave/send_leave (v2), invite (v2) received;
 *   joining side:  joining a room this server is not in, rejecting a remote invite,
 *                  inviting a user of another server.
 */

import { selectAuthEventKeys } from '../protocol/auth-events-selection.js';
import { checkAuthRules } from '../protocol/auth-rules.js';
import type { JsonObject, Pdu, RoomEvent, StateMap } from '../protocol/events.js';
import { stateTupleKey } from '../protocol/events.js';
import { hashAndSignEvent, hashSignAndIdentifyEvent, type UnsignedPdu } from '../protocol/hashing.js';
import { serverNameOfId as serverOf } from '../protocol/identifiers.js';
import {
  isKnownRoomVersion,
  ROOM_VERSIONS,
  type RoomVersionRules,
  roomVersionRules,
} from '../protocol/room-versions.js';
import type { SigningKey } from '../protocol/signing.js';
import { type Errcode, MatrixError } from '../server/errors.js';
import { buildRoomEvent, randomOpaqueId } from '../server/rooms/event-builder.js';
import { memberProfile } from '../server/rooms/membership.js';
import { restrictedJoinAuthoriser } from '../server/rooms/restricted-join.js';
import { RoomDraft } from '../server/rooms/room-draft.js';
import type { RoomEventSender } from '../server/rooms/room-event-sender.js';
import { eventReference, extremitiesToCite, loadRoomHead, type RoomHead } from '../server/rooms/room-head.js';
import { RoomReads } from '../server/rooms/room-reads.js';
import type { StoredEvent } from '../storage/event-store.js';
import type { Storage } from '../storage/storage.js';
import { FederationRequestError } from './federation.js';
import { type FederatedRoom, type InboundPdus, orderByAuth } from './inbound-pdus.js';
import { serversInRoom } from './outbound-events.js';
import { lookupOver, parseReceivedPdu } from './pdu-checks.js';
import type { RemoteRooms } from './remote-rooms.js';
import { stateDelta } from './stored-state.js';

export interface MembershipHandshakesOptions {
  readonly storage: Storage;
  readonly sender: RoomEventSender;
  readonly inbound: InboundPdus;
  readonly remote: RemoteRooms;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  /** An invite for a local user arrived from elsewhere (stored): wake their syncs. */
  readonly onMembershipChanged: (roomId: string, userId: string) => void;
  /**
   * Sends an event a joining (leaving, knocking) server handed us to the room's other
   * servers: that server only told us (server-server "Joining Rooms": the resident server
   * sends the join on).
   */
  readonly relay?: (event: Pdu, roomId: string, origin: string) => void;
  readonly now?: () => number;
}

type MembershipKind = 'join' | 'leave' | 'knock';

/** The `ver` we send with make_join/make_knock: every room version we implement. */
export const SUPPORTED_ROOM_VERSIONS: readonly string[] = [...ROOM_VERSIONS.keys()];

/**
 * A remote server's refusal as our client's error: its 4xx passes through (403 stays 403),
 * no answer or a 5xx is 502 (as Synapse answers when a federation request fails).
 */
export function matrixErrorOfRemote(error: unknown, action: string): MatrixError {
  if (error instanceof FederationRequestError && error.status >= 400 && error.status < 500) {
    // A room version the other server cannot take is worth telling the client as such.
    const errcode: Errcode =
      error.errcode === 'M_INCOMPATIBLE_ROOM_VERSION' || error.errcode === 'M_UNSUPPORTED_ROOM_VERSION'
        ? error.errcode
        : error.status === 403
          ? 'M_FORBIDDEN'
          : error.status === 404
            ? 'M_NOT_FOUND'
            : 'M_UNKNOWN';
    return new MatrixError(
      error.status,
      errcode,
      `${error.destination} refused to ${action}: ${error.message}`,
    );
  }
  if (error instanceof MatrixError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MatrixError(502, 'M_UNKNOWN', `Could not ${action}: ${message}`);
}

/** The state events of a snapshot, in full, for the send_join/state answers. */
async function stateEvents(storage: Storage, state: StateMap): Promise<StoredEvent[]> {
  const events = await storage.events.getEvents([...state.values()]);
  return [...state.values()].map((id) => events.get(id)).filter((e): e is StoredEvent => e !== undefined);
}

export class MembershipHandshakes {
  private readonly now: () => number;
  private readonly reads: RoomReads;

  constructor(private readonly options: MembershipHandshakesOptions) {
    this.now = options.now ?? Date.now;
    this.reads = new RoomReads(options.storage);
  }

  // ---- resident side -----------------------------------------------------------------------

  /**
   * GET /make_join, /make_leave, /make_knock: an unsigned membership event on our room head,
   * refused when the room version is not among `supportedVersions` (joins, knocks) or the auth
   * rules would refuse it against the current state.
   */
  async makeMembership(
    origin: string,
    kind: MembershipKind,
    roomId: string,
    userId: string,
    supportedVersions: readonly string[] | undefined,
  ): Promise<{ event: JsonObject; room_version: string }> {
    if (serverOf(userId) !== origin) throw MatrixError.forbidden(`${userId} is not a user of ${origin}`);
    const { storage, sender } = this.options;
    return sender.runExclusive(roomId, async () => {
      const head = await loadRoomHead(storage, roomId);
      if (head === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
      const rules = head.rules;
      const versions = supportedVersions ?? ['1'];
      if (kind !== 'leave' && !versions.includes(rules.id)) {
        throw MatrixError.of(
          'M_INCOMPATIBLE_ROOM_VERSION',
          `Room version ${rules.id} is not supported by ${origin}`,
          {
            room_version: rules.id,
          },
        );
      }
      if (kind === 'knock' && !rules.knockAllowed)
        throw MatrixError.forbidden('This room version has no knocking');
      const content: JsonObject = { membership: kind };
      // Restricted rooms (server-server "Joining Rooms", restricted): a local member able to
      // invite vouches for the join, and we sign it at send_join (auth rule 4.3.5).
      if (kind === 'join') {
        const authoriser = await restrictedJoinAuthoriser(
          this.reads,
          this.options.serverName,
          roomId,
          userId,
        );
        if (authoriser !== undefined) content.join_authorised_via_users_server = authoriser;
      }
      const template = await this.template(head, {
        type: 'm.room.member',
        sender: userId,
        stateKey: userId,
        content,
      });
      // The auth rules against the current state, on a placeholder event ID (signed by us as
      // we will sign a restricted join at send_join).
      const probe: RoomEvent = {
        eventId: '$probe',
        roomId,
        pdu: {
          ...template,
          hashes: { sha256: '' },
          signatures: { [this.options.serverName]: { probe: '' } },
        } as Pdu,
      };
      const draft = new RoomDraft(head);
      const verdict = checkAuthRules(probe, draft.lookup, rules);
      if (!verdict.allowed) throw MatrixError.forbidden(`Not allowed to ${kind}: ${verdict.reason}`);
      return { event: template as unknown as JsonObject, room_version: rules.id };
    });
  }

  /**
   * PUT /v2/send_join (and send_leave, send_knock): the signed membership event, checked and
   * persisted as any PDU; joins answer with the state before the event and its auth chain.
   */
  async sendMembership(
    origin: string,
    kind: MembershipKind,
    roomId: string,
    eventId: string,
    json: unknown,
  ): Promise<{ event: Pdu; state: StateMap | null }> {
    const { storage, sender, inbound } = this.options;
    return sender.runExclusive(roomId, async (turn) => {
      const room = await inbound.roomContext(roomId);
      if (room === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
      const parsed = parseReceivedPdu(json, room.rules);
      if (!parsed.ok) throw MatrixError.badJson(parsed.reason);
      const { event } = parsed;
      const { pdu } = event;
      if (event.eventId !== eventId) throw MatrixError.badJson('The event ID does not match the event');
      if (event.roomId !== roomId) throw MatrixError.badJson('The event is for another room');
      if (pdu.type !== 'm.room.member' || pdu.state_key !== pdu.sender || pdu.content.membership !== kind) {
        throw MatrixError.badJson(`Not a ${kind} event of its sender`);
      }
      if (serverOf(pdu.sender) !== origin)
        throw MatrixError.forbidden(`${pdu.sender} is not a user of ${origin}`);
      const received = kind === 'join' ? this.vouchForJoin(event, room.rules) : event;
      const error = await inbound.receiveInRoom(origin, room, received, false, turn);
      if (error !== undefined) throw MatrixError.forbidden(error);
      const stored = await storage.events.getEvent(eventId);
      if (stored === null || stored.rejectionReason !== null) {
        throw MatrixError.forbidden(`The ${kind} was not accepted: ${stored?.rejectionReason ?? 'unknown'}`);
      }
      this.options.relay?.(stored.pdu, roomId, origin);
      const state = kind === 'join' ? await storage.state.stateBeforeEvent(eventId) : null;
      return { event: stored.pdu, state };
    });
  }

  /**
   * A restricted join naming one of our users in `join_authorised_via_users_server` gets our
   * signature added (the joining server's stays); the hashes and event ID do not change.
   */
  private vouchForJoin(event: RoomEvent, rules: RoomVersionRules): RoomEvent {
    const authoriser = event.pdu.content.join_authorised_via_users_server;
    if (typeof authoriser !== 'string' || serverOf(authoriser) !== this.options.serverName) return event;
    const { signatures: _signatures, unsigned: _unsigned, hashes, ...rest } = event.pdu;
    const ours = hashAndSignEvent(
      rest as UnsignedPdu,
      this.options.serverName,
      this.options.signingKey,
      rules,
    );
    if (ours.hashes.sha256 !== hashes.sha256) return event; // a content hash mismatch: leave it to the checks
    const signatures = { ...event.pdu.signatures, ...ours.signatures };
    return { ...event, pdu: { ...event.pdu, signatures } };
  }

  /**
   * The join as the resident server returned it when it is ours with more signatures (same
   * event ID, so the same content and hashes); else ours.
   */
  private residentCopy(returned: unknown, ours: RoomEvent, rules: RoomVersionRules): RoomEvent {
    if (returned === undefined) return ours;
    const parsed = parseReceivedPdu(returned, rules);
    if (!parsed.ok || parsed.event.eventId !== ours.eventId) return ours;
    const ourSignatures = ours.pdu.signatures[this.options.serverName];
    const { unsigned: _unsigned, ...pdu } = parsed.event.pdu;
    // Our own signature must be the one we made.
    if (JSON.stringify(pdu.signatures[this.options.serverName]) !== JSON.stringify(ourSignatures))
      return ours;
    return { ...parsed.event, pdu: pdu as Pdu };
  }

  /** The send_join answer: state before the join and the auth chain of that state and the join. */
  async joinAnswer(eventId: string, state: StateMap): Promise<{ state: Pdu[]; auth_chain: Pdu[] }> {
    const { storage } = this.options;
    const stateList = await stateEvents(storage, state);
    const chainIds = await storage.events.authChainEventIds([...state.values(), eventId]);
    const chain = await storage.events.getEvents([...chainIds]);
    return {
      state: stateList.map((e) => e.pdu),
      auth_chain: orderByAuth([...chain.values()]).map((e) => e.pdu),
    };
  }

  /**
   * PUT /v2/invite received: an invite for one of our users. We add our signature and, when we
   * are not in the room, keep the invite (as an outlier, with the stripped state it carried) so
   * that it reaches the user's sync.
   */
  async receiveInvite(
    origin: string,
    roomId: string,
    eventId: string,
    body: { event: unknown; room_version: string; invite_room_state?: unknown[] },
  ): Promise<Pdu> {
    const { storage, serverName, signingKey, inbound } = this.options;
    if (!isKnownRoomVersion(body.room_version)) {
      throw MatrixError.of(
        'M_INCOMPATIBLE_ROOM_VERSION',
        `Room version ${body.room_version} is not supported`,
        {
          room_version: body.room_version,
        },
      );
    }
    const rules = roomVersionRules(body.room_version);
    const parsed = parseReceivedPdu(body.event, rules);
    if (!parsed.ok) throw MatrixError.badJson(parsed.reason);
    const { event } = parsed;
    const { pdu } = event;
    if (event.eventId !== eventId || event.roomId !== roomId)
      throw MatrixError.badJson('Event ID or room ID mismatch');
    if (
      pdu.type !== 'm.room.member' ||
      pdu.content.membership !== 'invite' ||
      typeof pdu.state_key !== 'string'
    ) {
      throw MatrixError.badJson('Not an invite');
    }
    if (serverOf(pdu.sender) !== origin)
      throw MatrixError.forbidden(`${pdu.sender} is not a user of ${origin}`);
    const invitee = pdu.state_key;
    if (serverOf(invitee) !== serverName)
      throw MatrixError.forbidden(`${invitee} is not a user of this server`);
    if ((await storage.accounts.getAccount(invitee)) === null)
      throw MatrixError.notFound(`Unknown user ${invitee}`);
    const integrity = await inbound.verifyIntegrity(event, rules);
    if (!integrity.ok) throw MatrixError.forbidden(integrity.reason);
    if (integrity.redacted) throw MatrixError.forbidden('The invite content hash does not match');

    const { unsigned: _unsigned, ...withoutUnsigned } = pdu;
    const signed = hashAndSignEvent(withoutUnsigned, serverName, signingKey, rules);
    // Kept when no user of ours is joined: the inviting server then sends the invite nowhere else
    // (Synapse sends room events only to servers with a joined member), even to a room we knew
    // and left. While one of ours is joined it comes with the room's events like any other.
    const weAreJoined =
      (await inbound.roomContext(roomId)) !== null && (await serversInRoom(storage, roomId)).has(serverName);
    if (!weAreJoined && (await storage.events.getEvent(eventId)) === null) {
      // Kept with the stripped state it came with, for the invitee's sync (invite_state).
      const inviteRoomState = Array.isArray(body.invite_room_state) ? body.invite_room_state : [];
      const stored: Pdu = {
        ...signed,
        unsigned: { ...(pdu.unsigned ?? {}), invite_room_state: inviteRoomState as JsonObject[] },
      };
      await storage.events.persistEvent({
        event: { ...event, pdu: stored },
        json: JSON.stringify(stored),
        outlier: true,
        currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', invitee), eventId]]) },
      });
      this.options.onMembershipChanged(roomId, invitee);
    }
    return signed;
  }

  // ---- joining side ------------------------------------------------------------------------

  /**
   * Joins a room this server is not in through one of `servers` (server-server "Joining
   * Rooms"): make_join, sign, send_join, then the returned state and auth chain are checked
   * (signatures, hashes, each event against its auth events) and stored as outliers, and the
   * join as a timeline event whose state is the returned state.
   */
  async joinRemote(
    roomId: string,
    userId: string,
    servers: readonly string[],
    reason?: string,
  ): Promise<string> {
    const candidates = servers.filter((server) => server !== this.options.serverName);
    if (candidates.length === 0) throw MatrixError.notFound(`No known servers for room ${roomId}`);
    let lastError: unknown;
    for (const server of candidates) {
      try {
        return await this.joinVia(server, roomId, userId, reason);
      } catch (error) {
        if (error instanceof MatrixError && error.status === 403) throw error;
        // The resident server refused us (not invited, banned...): asking others will not help.
        if (error instanceof FederationRequestError && error.status === 403) {
          throw MatrixError.forbidden(`${server} refused the join: ${error.message}`);
        }
        lastError = error;
      }
    }
    if (lastError instanceof MatrixError) throw lastError;
    // None of them answered, or none knows the room: as Synapse, the room cannot be found.
    throw MatrixError.notFound(
      `Could not join ${roomId} through ${candidates.join(', ')}: ${String((lastError as Error)?.message ?? lastError)}`,
    );
  }

  private async joinVia(server: string, roomId: string, userId: string, reason?: string): Promise<string> {
    const { remote, storage, sender, inbound } = this.options;
    const made = await this.makeRemote(server, 'join', roomId, userId);
    const content: JsonObject = {
      ...(made.event.content as JsonObject),
      membership: 'join',
      ...(await memberProfile(storage, userId)),
    };
    if (reason !== undefined) content.reason = reason;
    const { event: ours, rules } = this.signTemplate(made, roomId, userId, content);
    const answer = await remote.sendJoin(server, roomId, ours.eventId, ours.pdu);
    // A restricted join comes back with the resident's signature too: that copy is the one kept.
    const event = this.residentCopy(answer.event, ours, rules);

    return sender.runExclusive(roomId, async () => {
      // Parse the returned state and auth chain in the room's version.
      const received = new Map<string, RoomEvent>();
      for (const json of [...answer.authChain, ...answer.state]) {
        const parsed = parseReceivedPdu(json, rules);
        if (parsed.ok && parsed.event.roomId === roomId) received.set(parsed.event.eventId, parsed.event);
      }
      const createEvent = [...received.values()].find(
        (e) => e.pdu.type === 'm.room.create' && e.pdu.state_key === '',
      );
      if (createEvent === undefined)
        throw MatrixError.of('M_UNKNOWN', `${server} sent no create event for ${roomId}`);
      const room: FederatedRoom = {
        roomId,
        rules,
        createEvent: {
          ...createEvent,
          json: '',
          streamOrdering: 0,
          outlier: true,
          rejectionReason: null,
          stateBeforeSnapshotId: null,
          stateAfterSnapshotId: null,
        },
      };
      await inbound.persistOutliers(room, [...received.values()]);

      // The state before the join: the returned state events that passed their checks.
      const stateIds = new Set<string>();
      for (const json of answer.state) {
        const parsed = parseReceivedPdu(json, rules);
        if (parsed.ok) stateIds.add(parsed.event.eventId);
      }
      const stored = await storage.events.getEvents([...stateIds]);
      const state: StateMap = new Map();
      for (const e of stored.values()) {
        if (e.rejectionReason === null && typeof e.pdu.state_key === 'string') {
          state.set(stateTupleKey(e.pdu.type, e.pdu.state_key), e.eventId);
        }
      }
      const storedCreate = state.get(stateTupleKey('m.room.create', ''));
      if (storedCreate === undefined)
        throw MatrixError.of('M_UNKNOWN', `The state of ${roomId} from ${server} does not verify`);

      // The join itself against that state.
      const lookup = lookupOver(
        [...stored.values()].filter(
          (e) => state.get(stateTupleKey(e.pdu.type, e.pdu.state_key ?? '')) === e.eventId,
        ),
      );
      const verdict = checkAuthRules(event, lookup, rules);
      if (!verdict.allowed)
        throw MatrixError.forbidden(`The join does not pass the auth rules: ${verdict.reason}`);

      if ((await storage.rooms.getRoom(roomId)) === null) {
        const create = await storage.events.getEvent(storedCreate);
        await storage.rooms.createRoom({
          roomId,
          roomVersion: rules.id,
          creator: create?.pdu.sender ?? '',
          createdTs: create?.pdu.origin_server_ts ?? this.now(),
          isPublic: false,
        });
      }
      const currentState = await storage.state.currentState(roomId);
      const after = new Map(state);
      after.set(stateTupleKey('m.room.member', userId), event.eventId);
      const json = JSON.stringify(event.pdu);
      const persisted = await storage.events.persistEvent({
        event,
        json,
        stateBefore: { parentSnapshotId: null, delta: { set: state } },
        currentStateDelta: stateDelta(currentState, after),
      });
      sender.announcePersisted({ event, json, streamOrdering: persisted.streamOrdering });
      this.options.onMembershipChanged(roomId, userId);
      return event.eventId;
    });
  }

  /**
   * Rejects an invite to (or withdraws a knock on) a room this server is not in:
   * make_leave/send_leave through the inviting server (or the room ID's server), then the
   * leave is kept (as an outlier) so the invite or knock leaves the user's sync.
   */
  async leaveRemote(roomId: string, userId: string, reason?: string): Promise<void> {
    const { storage, remote } = this.options;
    const inviteId = await storage.state.currentStateEventId(roomId, 'm.room.member', userId);
    const invite = inviteId === null ? null : await storage.events.getEvent(inviteId);
    if (invite === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
    const servers = [serverOf(invite.pdu.sender), ...(roomId.includes(':') ? [serverOf(roomId)] : [])].filter(
      (server) => server !== this.options.serverName,
    );
    let lastError: unknown = MatrixError.notFound(`No server to leave ${roomId} through`);
    for (const server of new Set(servers)) {
      try {
        const made = await this.makeRemote(server, 'leave', roomId, userId);
        const content: JsonObject = { membership: 'leave' };
        if (reason !== undefined) content.reason = reason;
        const { event } = this.signTemplate(made, roomId, userId, content);
        await remote.sendMembership(server, 'leave', roomId, event.eventId, event.pdu);
        await storage.events.persistEvent({
          event,
          json: JSON.stringify(event.pdu),
          outlier: true,
          currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', userId), event.eventId]]) },
        });
        this.options.onMembershipChanged(roomId, userId);
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * Knocks on a room this server is not in (server-server "Knocking upon a room"): make_knock,
   * sign, send_knock; the knock is kept (as an outlier, with the stripped state the resident
   * server answered) so that it shows in the user's sync.
   */
  async knockRemote(
    roomId: string,
    userId: string,
    servers: readonly string[],
    reason?: string,
  ): Promise<void> {
    const { storage, remote } = this.options;
    const candidates = servers.filter((server) => server !== this.options.serverName);
    if (candidates.length === 0) throw MatrixError.notFound(`No known servers for room ${roomId}`);
    let lastError: unknown;
    for (const server of candidates) {
      try {
        const made = await this.makeRemote(server, 'knock', roomId, userId);
        const content: JsonObject = { membership: 'knock', ...(await memberProfile(storage, userId)) };
        if (reason !== undefined) content.reason = reason;
        const { event } = this.signTemplate(made, roomId, userId, content);
        const answer = await remote.sendMembership(server, 'knock', roomId, event.eventId, event.pdu);
        // Servers from before v1.1 of MSC2403's stabilisation (Synapse 1.67) answer knock_state_events.
        const knockState = Array.isArray(answer.knock_room_state)
          ? answer.knock_room_state
          : Array.isArray(answer.knock_state_events)
            ? answer.knock_state_events
            : [];
        const stored: Pdu = { ...event.pdu, unsigned: { knock_room_state: knockState } };
        await storage.events.persistEvent({
          event: { ...event, pdu: stored },
          json: JSON.stringify(stored),
          outlier: true,
          currentStateDelta: { set: new Map([[stateTupleKey('m.room.member', userId), event.eventId]]) },
        });
        this.options.onMembershipChanged(roomId, userId);
        return;
      } catch (error) {
        if (error instanceof FederationRequestError && error.status === 403)
          throw matrixErrorOfRemote(error, 'knock');
        if (error instanceof MatrixError && error.status === 403) throw error;
        lastError = error;
      }
    }
    throw matrixErrorOfRemote(lastError, `knock on ${roomId}`);
  }

  /**
   * Invites a user of another server (server-server "Inviting to a room"): the invite is built
   * on our room head, signed by the invitee's server through /v2/invite, then persisted and sent
   * like any event of the room.
   */
  async inviteRemote(roomId: string, inviter: string, invitee: string, content: JsonObject): Promise<string> {
    const { storage, sender, remote, inbound, serverName, signingKey } = this.options;
    return sender.runExclusive(roomId, async (turn) => {
      const head = await loadRoomHead(storage, roomId);
      if (head === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
      const template = { sender: inviter, type: 'm.room.member', stateKey: invitee, content };
      await head.load(
        storage,
        selectAuthEventKeys(
          { type: template.type, sender: inviter, state_key: invitee, content },
          head.rules,
        ),
      );
      const built = buildRoomEvent(
        new RoomDraft(head),
        template,
        { serverName, key: signingKey },
        this.now(),
      );
      const inviteState = await this.strippedState(roomId);
      let signedJson: unknown;
      try {
        signedJson = await remote.invite(serverOf(invitee), roomId, built.event.eventId, {
          event: built.event.pdu,
          room_version: head.rules.id,
          invite_room_state: inviteState,
        });
      } catch (error) {
        throw matrixErrorOfRemote(error, `invite ${invitee}`);
      }
      const parsed = parseReceivedPdu(signedJson, head.rules);
      if (!parsed.ok || parsed.event.eventId !== built.event.eventId) {
        throw MatrixError.of('M_UNKNOWN', `${serverOf(invitee)} answered the invite with another event`);
      }
      const room = await inbound.roomContext(roomId);
      if (room === null) throw MatrixError.notFound(`Unknown room ${roomId}`);
      const error = await inbound.receiveInRoom(serverName, room, parsed.event, false, turn);
      if (error !== undefined) throw MatrixError.forbidden(error);
      return built.event.eventId;
    });
  }

  /** client-server "Stripped state": what an invitee sees of the room before joining. */
  async strippedState(roomId: string): Promise<JsonObject[]> {
    const { storage } = this.options;
    const keys = [
      'm.room.create',
      'm.room.join_rules',
      'm.room.canonical_alias',
      'm.room.avatar',
      'm.room.encryption',
      'm.room.name',
      'm.room.topic',
    ];
    const stripped: JsonObject[] = [];
    for (const type of keys) {
      const id = await storage.state.currentStateEventId(roomId, type, '');
      const event = id === null ? null : await storage.events.getEvent(id);
      if (event !== null) {
        stripped.push({ type, state_key: '', sender: event.pdu.sender, content: event.pdu.content });
      }
    }
    return stripped;
  }

  // ---- shared ----------------------------------------------------------------------------

  private async makeRemote(server: string, kind: MembershipKind, roomId: string, userId: string) {
    const made = await this.options.remote.makeMembership(
      server,
      kind,
      roomId,
      userId,
      SUPPORTED_ROOM_VERSIONS,
    );
    if (!isKnownRoomVersion(made.roomVersion)) {
      throw MatrixError.of(
        'M_INCOMPATIBLE_ROOM_VERSION',
        `Room version ${made.roomVersion} is not supported`,
      );
    }
    return made;
  }

  /** Fills in a make_* template as ours (timestamp, origin, event ID in v1-2), hashes and signs it. */
  private signTemplate(
    made: { roomVersion: string; event: JsonObject },
    roomId: string,
    userId: string,
    content: JsonObject,
  ): { event: RoomEvent; rules: RoomVersionRules } {
    const rules = roomVersionRules(made.roomVersion);
    const template = made.event as unknown as Partial<Pdu>;
    const unsigned: UnsignedPdu = {
      type: 'm.room.member',
      room_id: roomId,
      sender: userId,
      state_key: userId,
      content,
      depth: typeof template.depth === 'number' ? template.depth : 1,
      prev_events: Array.isArray(template.prev_events) ? template.prev_events : [],
      auth_events: Array.isArray(template.auth_events) ? template.auth_events : [],
      origin_server_ts: this.now(),
    };
    (unsigned as UnsignedPdu & { origin?: string }).origin = this.options.serverName;
    if (rules.eventIdFormat === 'server-generated')
      unsigned.event_id = `$${randomOpaqueId()}:${this.options.serverName}`;
    const event = hashSignAndIdentifyEvent(unsigned, this.options.serverName, this.options.signingKey, rules);
    return { event, rules };
  }

  /** An unsigned event on the room head: prev_events, auth_events from current state, depth. */
  private async template(
    head: RoomHead,
    spec: { type: string; sender: string; stateKey: string; content: JsonObject },
  ): Promise<UnsignedPdu> {
    const { storage } = this.options;
    const rules = head.rules;
    const shape = { type: spec.type, sender: spec.sender, state_key: spec.stateKey, content: spec.content };
    const keys = selectAuthEventKeys(shape, rules);
    await head.load(storage, keys);
    const authEvents = keys
      .map(([type, stateKey]) => head.lookup(type, stateKey))
      .filter((e): e is RoomEvent => e !== undefined)
      .map((e) => eventReference(e, rules));
    const cited = extremitiesToCite(head.extremities);
    const depth = Math.max(0, ...cited.map((e) => e.depth)) + 1;
    const unsigned: UnsignedPdu = {
      type: spec.type,
      room_id: head.roomId,
      sender: spec.sender,
      state_key: spec.stateKey,
      content: spec.content,
      depth,
      prev_events: cited.map((e) => e.reference),
      auth_events: authEvents,
      origin_server_ts: this.now(),
    };
    (unsigned as UnsignedPdu & { origin?: string }).origin = this.options.serverName;
    return unsigned;
  }
}
