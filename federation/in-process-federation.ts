/**
 * Test support: several servers' room federation in one process, each over its own SQLite
 * file, talking through a requester that calls the other server's handlers directly (the
 * same service methods the HTTP routes call, with the calling server as the authenticated
 * origin). No HTTP, no TLS: the conformance tests cover those.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject, Pdu } from '../protocol/events.js';
import { checkReceivedEvent, type VerifyKeyLookup } from '../protocol/hashing.js';
import { generateSigningKey, type SigningKey } from '../protocol/signing.js';
import { MatrixError } from '../server/errors.js';
import type { PersistedRoomEvent } from '../server/rooms/room-event-sender.js';
import { createRoomServices, type RoomServices } from '../server/rooms/room-services.js';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { FederationRequestError, type KeyRing } from './federation.js';
import { InboundPdus } from './inbound-pdus.js';
import { MembershipHandshakes } from './membership-handshakes.js';
import { relayEvent, sendLocalEvents } from './outbound-events.js';
import { PeerReads } from './peer-reads.js';
import { type FederationRequester, RemoteRooms } from './remote-rooms.js';

export interface InProcessServer {
  readonly name: string;
  readonly dir: string;
  readonly storage: SqliteStorage;
  readonly signingKey: SigningKey;
  readonly rooms: RoomServices;
  readonly inbound: InboundPdus;
  readonly handshakes: MembershipHandshakes;
  readonly reads: PeerReads;
  /** PDUs this server queued for others: [destinations, pdu]. */
  readonly sent: Array<[readonly string[], Pdu]>;
  /** What the inbound pipeline logged as failures (tests expect none). */
  readonly warnings: unknown[];
  /** Events announced to listeners (local sends and accepted federation events). */
  readonly announced: PersistedRoomEvent[];
  account(localpart: string): Promise<string>;
}

export interface InProcessFederation {
  readonly servers: Map<string, InProcessServer>;
  /** Requests made, as `origin -> destination METHOD path`. */
  readonly requests: string[];
  /** Servers that answer nothing (as if down). */
  readonly unreachable: Set<string>;
  add(name: string): Promise<InProcessServer>;
  /** Delivers what `from` queued (since the last delivery) to each destination's inbound pipeline. */
  deliver(from: string): Promise<void>;
  close(): Promise<void>;
}

export function openInProcessFederation(): InProcessFederation {
  const servers = new Map<string, InProcessServer>();
  const requests: string[] = [];
  const unreachable = new Set<string>();
  const delivered = new Map<string, number>();
  const lookupKey: VerifyKeyLookup = (serverName, keyId) => {
    const server = servers.get(serverName);
    return server !== undefined && server.signingKey.keyId === keyId
      ? { publicKey: server.signingKey.publicKey }
      : undefined;
  };
  const keys: Pick<KeyRing, 'checkReceivedEvent'> = {
    checkReceivedEvent: async (pdu, rules) => checkReceivedEvent(pdu, rules, lookupKey),
  };

  const requesterFor =
    (origin: string): FederationRequester =>
    async (destination, request) => {
      requests.push(`${origin} -> ${destination} ${request.method} ${request.path}`);
      const target = servers.get(destination);
      if (target === undefined || unreachable.has(destination)) {
        throw new FederationRequestError(destination, 0, undefined, 'unreachable');
      }
      try {
        return await dispatch(
          target,
          origin,
          request.method,
          request.path,
          request.query ?? {},
          request.body,
        );
      } catch (error) {
        if (error instanceof MatrixError) {
          throw new FederationRequestError(destination, error.status, error.errcode, error.message);
        }
        throw error;
      }
    };

  return {
    servers,
    requests,
    unreachable,
    async add(name) {
      const dir = mkdtempSync(join(tmpdir(), `myelin-fed-${name}-`));
      const storage = await openSqliteStorage({ path: join(dir, 'myelin.db') });
      const signingKey = generateSigningKey();
      const rooms = createRoomServices({ storage, serverName: name, signingKey });
      const remote = new RemoteRooms(requesterFor(name));
      const warnings: unknown[] = [];
      const log = { warn: (details: unknown) => void warnings.push(details), debug: () => {} };
      const inbound = new InboundPdus({
        storage,
        reads: rooms.reads,
        sender: rooms.sender,
        remote,
        keys,
        log,
      });
      const sent: Array<[readonly string[], Pdu]> = [];
      const announced: PersistedRoomEvent[] = [];
      const outbound = {
        storage,
        serverName: name,
        queue: (destinations: readonly string[], pdu: Pdu) => {
          sent.push([destinations, pdu]);
        },
        onError: () => {},
      };
      const handshakes = new MembershipHandshakes({
        storage,
        sender: rooms.sender,
        inbound,
        remote,
        serverName: name,
        signingKey,
        onMembershipChanged: () => {},
        relay: relayEvent(outbound),
      });
      rooms.sender.onEventPersisted((persisted) => announced.push(persisted));
      rooms.sender.onEventPersisted(sendLocalEvents(outbound));
      const server: InProcessServer = {
        name,
        dir,
        storage,
        signingKey,
        rooms,
        inbound,
        handshakes,
        reads: new PeerReads(storage),
        sent,
        warnings,
        announced,
        async account(localpart) {
          const userId = `@${localpart}:${name}`;
          await storage.accounts.createAccount({
            userId,
            createdTs: Date.now(),
            displayName: null,
            avatarUrl: null,
          });
          return userId;
        },
      };
      servers.set(name, server);
      return server;
    },
    async deliver(from) {
      const server = servers.get(from)!;
      // Queued events are sent after their commit, asynchronously: let the listeners run.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const start = delivered.get(from) ?? 0;
      const batch = server.sent.slice(start);
      delivered.set(from, server.sent.length);
      const byDestination = new Map<string, Pdu[]>();
      for (const [destinations, pdu] of batch) {
        for (const destination of destinations) {
          if (!byDestination.has(destination)) byDestination.set(destination, []);
          byDestination.get(destination)!.push(pdu);
        }
      }
      for (const [destination, pdus] of byDestination) {
        const target = servers.get(destination);
        if (target !== undefined && !unreachable.has(destination))
          await target.inbound.handlePdus(from, pdus);
      }
    },
    async close() {
      for (const server of servers.values()) {
        await server.rooms.close();
        await server.storage.close();
        rmSync(server.dir, { recursive: true, force: true });
      }
    },
  };
}

const decode = decodeURIComponent;

/** The federation routes this file stands in for, as calls on the target's services. */
async function dispatch(
  target: InProcessServer,
  origin: string,
  method: string,
  path: string,
  query: Record<string, unknown>,
  body: unknown,
): Promise<unknown> {
  const parts = path.split('/').slice(3); // after /_matrix/federation
  const [version, endpoint, ...rest] = parts;
  const args = rest.map(decode);
  const first = (value: unknown) => (Array.isArray(value) ? value[0] : value) as string;
  if (endpoint === 'make_join' || endpoint === 'make_leave' || endpoint === 'make_knock') {
    const kind = endpoint.slice(5) as 'join' | 'leave' | 'knock';
    const ver = query.ver === undefined ? undefined : ([] as string[]).concat(query.ver as string[]);
    return target.handshakes.makeMembership(
      origin,
      kind,
      args[0]!,
      args[1]!,
      kind === 'leave' ? undefined : (ver ?? ['1']),
    );
  }
  if (endpoint === 'send_join' && version === 'v2') {
    const { event, state } = await target.handshakes.sendMembership(origin, 'join', args[0]!, args[1]!, body);
    const answer = await target.handshakes.joinAnswer(args[1]!, state ?? new Map());
    return { origin: target.name, members_omitted: false, ...answer, event };
  }
  if (endpoint === 'send_knock') {
    await target.handshakes.sendMembership(origin, 'knock', args[0]!, args[1]!, body);
    return { knock_room_state: await target.handshakes.strippedState(args[0]!) };
  }
  if (endpoint === 'send_leave') {
    await target.handshakes.sendMembership(origin, 'leave', args[0]!, args[1]!, body);
    return {};
  }
  if (endpoint === 'invite' && version === 'v2') {
    const signed = await target.handshakes.receiveInvite(
      origin,
      args[0]!,
      args[1]!,
      body as { event: unknown; room_version: string; invite_room_state?: unknown[] },
    );
    return { event: signed };
  }
  if (endpoint === 'event') {
    const event = await target.reads.event(origin, args[0]!);
    return { origin: target.name, origin_server_ts: Date.now(), pdus: [event.pdu] };
  }
  if (endpoint === 'state_ids') {
    const ids = await target.reads.stateAt(origin, args[0]!, first(query.event_id));
    return { pdu_ids: ids.state, auth_chain_ids: ids.authChain };
  }
  if (endpoint === 'get_missing_events') {
    const events = await target.reads.missingEvents(
      origin,
      args[0]!,
      body as { earliest_events: string[]; latest_events: string[]; limit?: number; min_depth?: number },
    );
    return { events: events.map((event) => event.pdu) };
  }
  if (endpoint === 'query' && args[0] === 'profile') {
    return {} as JsonObject;
  }
  void method;
  throw MatrixError.unrecognized(`in-process federation: no ${path}`);
}
