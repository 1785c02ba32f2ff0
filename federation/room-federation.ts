/**
 * Room federation, composed once per Homeserver over `hs.federation` (client, key ring,
 * queue): the inbound PDU pipeline (the InboundPduHandler PUT /send hands PDUs to), the
 * membership handshakes both ways, the reads other servers may make, and the listener that
 * sends our own events to the other servers of each room.
 */
import type { Logger } from 'pino';
import type { JsonObject, Pdu } from '../protocol/events.js';
import { serverNameOfId as serverOf } from '../protocol/identifiers.js';
import type { SigningKey } from '../protocol/signing.js';
import { MatrixError } from '../server/errors.js';
import type { RoomEventSender } from '../server/rooms/room-event-sender.js';
import type { RoomReads } from '../server/rooms/room-reads.js';
import type { Storage } from '../storage/storage.js';
import { Backfiller } from './backfill.js';
import type { Federation } from './federation.js';
import { InboundPdus } from './inbound-pdus.js';
import { MembershipHandshakes, matrixErrorOfRemote } from './membership-handshakes.js';
import { relayEvent, sendLocalEvents } from './outbound-events.js';
import { PeerReads } from './peer-reads.js';
import { RemoteRooms, requesterOver } from './remote-rooms.js';

export interface RoomFederationOptions {
  readonly federation: Pick<Federation, 'client' | 'keys' | 'queue' | 'access'>;
  readonly storage: Storage;
  readonly sender: RoomEventSender;
  /** The rooms' current state reads of the room services (power levels for redactions). */
  readonly roomReads: Pick<RoomReads, 'powers'>;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  readonly log: Logger;
  /** A membership of a local user changed outside the send path (a remote invite, a remote join). */
  readonly onMembershipChanged: (roomId: string, userId: string) => void;
  /** A stored event was rewritten outside the send path (a backfilled redaction applied to it). */
  readonly onEventRewritten?: (eventId: string) => void;
}

export interface RoomFederation {
  readonly inbound: InboundPdus;
  readonly handshakes: MembershipHandshakes;
  readonly reads: PeerReads;
  readonly remote: RemoteRooms;
  /**
   * Fetches one batch of the room's history before the oldest event we hold from a resident
   * server (/backfill); whether any event was added. For /messages reaching the start.
   */
  backfill(roomId: string): Promise<boolean>;
  /**
   * A user of another server's profile, or one field of it (server-server "Querying for
   * information": query/profile). 404 M_NOT_FOUND when their server does not know them or
   * does not answer.
   */
  remoteProfile(userId: string, field?: string): Promise<JsonObject>;
  /**
   * Resolves an alias of another server (query/directory). 404 M_NOT_FOUND when that server
   * does not know it; 502 when it cannot be asked.
   */
  remoteAlias(alias: string): Promise<{ room_id: string; servers: string[] }>;
  /** A page of another server's published room directory (federation publicRooms). */
  remotePublicRooms(
    server: string,
    page: { limit?: number; since?: string; filter?: JsonObject; includeAllNetworks?: boolean },
  ): Promise<JsonObject>;
  /** Stops sending our events to other servers. */
  close(): void;
}

export function createRoomFederation(options: RoomFederationOptions): RoomFederation {
  const { federation, storage, sender, roomReads, serverName, signingKey, log } = options;
  const remote = new RemoteRooms(requesterOver(federation.client));
  const inbound = new InboundPdus({
    storage,
    reads: roomReads,
    sender,
    remote,
    keys: federation.keys,
    isAllowedInRoom: (server, roomId) => federation.access.isAllowedInRoom(server, roomId),
    log,
  });
  const outbound = {
    storage,
    serverName,
    queue: (destinations: readonly string[], pdu: Pdu) => federation.queue.sendPdu(destinations, pdu),
    onError: (error: unknown, eventId: string) =>
      log.warn({ err: error, eventId }, 'Queueing an event for other servers failed'),
  };
  const handshakes = new MembershipHandshakes({
    storage,
    sender,
    inbound,
    remote,
    serverName,
    signingKey,
    onMembershipChanged: options.onMembershipChanged,
    relay: relayEvent(outbound),
  });
  const unsubscribe = sender.onEventPersisted(sendLocalEvents(outbound));
  const backfiller = new Backfiller({
    storage,
    reads: roomReads,
    sender,
    inbound,
    remote,
    serverName,
    log,
    ...(options.onEventRewritten === undefined ? {} : { onEventRewritten: options.onEventRewritten }),
  });
  return {
    inbound,
    handshakes,
    reads: new PeerReads(storage),
    remote,
    backfill: (roomId) => backfiller.backfill(roomId),
    async remoteProfile(userId, field) {
      try {
        const profile = await remote.queryProfile(serverOf(userId), userId, field);
        // Servers may send an unset field as null (Synapse does); our clients get it left out.
        return Object.fromEntries(Object.entries(profile).filter(([, value]) => value !== null));
      } catch (error) {
        log.debug({ err: error, userId }, 'Remote profile query failed');
        throw MatrixError.notFound(`Profile of ${userId} not found`);
      }
    },
    async remoteAlias(alias) {
      const server = serverOf(alias);
      try {
        const { roomId, servers } = await remote.queryDirectory(server, alias);
        return { room_id: roomId, servers: servers.length > 0 ? servers : [server] };
      } catch (error) {
        throw matrixErrorOfRemote(error, `resolve ${alias}`);
      }
    },
    async remotePublicRooms(server, page) {
      try {
        return await remote.publicRooms(server, page);
      } catch (error) {
        throw matrixErrorOfRemote(error, 'list its room directory');
      }
    },
    close: unsubscribe,
  };
}
