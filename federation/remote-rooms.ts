/**
 * Our client side of the server-server room endpoints (server-server "Retrieving events",
 * "Joining Rooms", "Leaving Rooms", "Inviting to a room", "Querying for information"),
 * over whatever signs and sends the requests (fed-transport's client). Answers are shape-checked
 * only as far as we read them; events inside are checked by the PDU checks.
 */
import type { JsonObject } from '../protocol/events.js';
import { type FederationClient, type FederationRequest, isUnrecognizedEndpoint } from './federation.js';

type RoomRequest = Omit<FederationRequest, 'destination'>;

/** Sends one X-Matrix-signed request and resolves with its JSON answer; rejects on an error status. */
export type FederationRequester = (destination: string, request: RoomRequest) => Promise<unknown>;

/** A requester over the federation client. */
export function requesterOver(client: Pick<FederationClient, 'request'>): FederationRequester {
  return (destination, request) => client.request({ ...request, destination });
}

const enc = encodeURIComponent;

/** Room versions whose invites the v1 API may carry. */
const V1_ROOM_VERSIONS = new Set(['1', '2']);

/** A 404 or 400 with M_UNRECOGNIZED (or no Matrix error at all): the server does not serve the endpoint. */

function object(value: unknown, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what}: the answer is not a JSON object`);
  }
  return value as JsonObject;
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function stringArray(value: unknown): string[] {
  return array(value).filter((item): item is string => typeof item === 'string');
}

export interface StateIds {
  readonly pduIds: string[];
  readonly authChainIds: string[];
}

export interface MakeMembershipAnswer {
  readonly roomVersion: string;
  readonly event: JsonObject;
}

export interface SendJoinAnswer {
  readonly state: unknown[];
  readonly authChain: unknown[];
  /** The join event as the resident server signed it (restricted joins), if it sent one. */
  readonly event?: unknown;
}

export class RemoteRooms {
  constructor(private readonly request: FederationRequester) {}

  /** GET /_matrix/federation/v1/event/{eventId}: the PDU, or null when the server does not answer with one. */
  async event(destination: string, eventId: string): Promise<unknown | null> {
    const answer = object(
      await this.request(destination, {
        method: 'GET',
        path: `/_matrix/federation/v1/event/${enc(eventId)}`,
      }),
      'event',
    );
    return array(answer.pdus)[0] ?? null;
  }

  /** POST /_matrix/federation/v1/get_missing_events/{roomId}. */
  async missingEvents(
    destination: string,
    roomId: string,
    body: { earliest_events: string[]; latest_events: string[]; limit: number; min_depth: number },
  ): Promise<unknown[]> {
    const answer = object(
      await this.request(destination, {
        method: 'POST',
        path: `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`,
        body,
      }),
      'get_missing_events',
    );
    return array(answer.events);
  }

  /** GET /_matrix/federation/v1/backfill/{roomId}: the PDUs from `from` (included) back, newest first. */
  async backfill(
    destination: string,
    roomId: string,
    from: readonly string[],
    limit: number,
  ): Promise<unknown[]> {
    const answer = object(
      await this.request(destination, {
        method: 'GET',
        path: `/_matrix/federation/v1/backfill/${enc(roomId)}`,
        query: { v: from, limit },
      }),
      'backfill',
    );
    return array(answer.pdus);
  }

  /** GET /_matrix/federation/v1/state_ids/{roomId}?event_id=: the state before the event. */
  async stateIds(destination: string, roomId: string, eventId: string): Promise<StateIds> {
    const answer = object(
      await this.request(destination, {
        method: 'GET',
        path: `/_matrix/federation/v1/state_ids/${enc(roomId)}`,
        query: { event_id: eventId },
      }),
      'state_ids',
    );
    return { pduIds: stringArray(answer.pdu_ids), authChainIds: stringArray(answer.auth_chain_ids) };
  }

  /** GET /_matrix/federation/v1/make_join|make_leave|make_knock/{roomId}/{userId}. */
  async makeMembership(
    destination: string,
    kind: 'join' | 'leave' | 'knock',
    roomId: string,
    userId: string,
    supportedVersions: readonly string[],
  ): Promise<MakeMembershipAnswer> {
    const answer = object(
      await this.request(destination, {
        method: 'GET',
        path: `/_matrix/federation/v1/make_${kind}/${enc(roomId)}/${enc(userId)}`,
        ...(kind === 'leave' ? {} : { query: { ver: [...supportedVersions] } }),
      }),
      `make_${kind}`,
    );
    const event = object(answer.event, `make_${kind} event`);
    const roomVersion = typeof answer.room_version === 'string' ? answer.room_version : '1';
    return { roomVersion, event };
  }

  /** PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}. */
  async sendJoin(
    destination: string,
    roomId: string,
    eventId: string,
    pdu: unknown,
  ): Promise<SendJoinAnswer> {
    const answer = object(
      await this.request(destination, {
        method: 'PUT',
        path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(eventId)}`,
        body: pdu,
      }),
      'send_join',
    );
    return {
      state: array(answer.state),
      authChain: array(answer.auth_chain),
      ...(answer.event !== undefined ? { event: answer.event } : {}),
    };
  }

  /** PUT /_matrix/federation/v2/send_leave|send_knock/{roomId}/{eventId}. */
  async sendMembership(
    destination: string,
    kind: 'leave' | 'knock',
    roomId: string,
    eventId: string,
    pdu: unknown,
  ): Promise<JsonObject> {
    const version = kind === 'leave' ? 'v2' : 'v1';
    return object(
      await this.request(destination, {
        method: 'PUT',
        path: `/_matrix/federation/${version}/send_${kind}/${enc(roomId)}/${enc(eventId)}`,
        body: pdu,
      }),
      `send_${kind}`,
    );
  }

  /**
   * PUT /_matrix/federation/v2/invite/{roomId}/{eventId}: the invitee's server signs the invite.
   * For rooms of versions 1 and 2, a server without the v2 API (404 or 400 M_UNRECOGNIZED) is
   * asked with the v1 API (server-server invites-v1.yaml), which answers `[200, { event }]`.
   */
  async invite(
    destination: string,
    roomId: string,
    eventId: string,
    body: { event: unknown; room_version: string; invite_room_state: unknown[] },
  ): Promise<unknown> {
    const path = `${enc(roomId)}/${enc(eventId)}`;
    let answer: unknown;
    try {
      answer = await this.request(destination, {
        method: 'PUT',
        path: `/_matrix/federation/v2/invite/${path}`,
        body,
      });
    } catch (error) {
      if (!(V1_ROOM_VERSIONS.has(body.room_version) && isUnrecognizedEndpoint(error))) throw error;
      const event = object(body.event, 'invite');
      const unsigned = typeof event.unsigned === 'object' && event.unsigned !== null ? event.unsigned : {};
      const v1 = await this.request(destination, {
        method: 'PUT',
        path: `/_matrix/federation/v1/invite/${path}`,
        body: { ...event, unsigned: { ...unsigned, invite_room_state: body.invite_room_state } },
      });
      answer = Array.isArray(v1) ? v1[1] : undefined;
    }
    return object(answer, 'invite').event;
  }

  /** GET /_matrix/federation/v1/query/directory?room_alias=. */
  async queryDirectory(destination: string, alias: string): Promise<{ roomId: string; servers: string[] }> {
    const answer = object(
      await this.request(destination, {
        method: 'GET',
        path: '/_matrix/federation/v1/query/directory',
        query: { room_alias: alias },
      }),
      'query/directory',
    );
    if (typeof answer.room_id !== 'string') throw new Error('query/directory: no room_id');
    return { roomId: answer.room_id, servers: stringArray(answer.servers) };
  }

  /**
   * Another server's published room directory: GET /_matrix/federation/v1/publicRooms, or the
   * POST form when a filter is given (both are served by Synapse since long before 1.67).
   */
  async publicRooms(
    destination: string,
    page: { limit?: number; since?: string; filter?: JsonObject; includeAllNetworks?: boolean },
  ): Promise<JsonObject> {
    const request: RoomRequest =
      page.filter === undefined
        ? {
            method: 'GET',
            path: '/_matrix/federation/v1/publicRooms',
            query: {
              ...(page.limit !== undefined ? { limit: page.limit } : {}),
              ...(page.since !== undefined ? { since: page.since } : {}),
              ...(page.includeAllNetworks !== undefined
                ? { include_all_networks: page.includeAllNetworks }
                : {}),
            },
          }
        : {
            method: 'POST',
            path: '/_matrix/federation/v1/publicRooms',
            body: {
              filter: page.filter,
              ...(page.limit !== undefined ? { limit: page.limit } : {}),
              ...(page.since !== undefined ? { since: page.since } : {}),
              ...(page.includeAllNetworks !== undefined
                ? { include_all_networks: page.includeAllNetworks }
                : {}),
            },
          };
    const answer = object(await this.request(destination, request), 'publicRooms');
    if (!Array.isArray(answer.chunk)) throw new Error('publicRooms: no chunk');
    return answer;
  }

  /** GET /_matrix/federation/v1/query/profile?user_id=[&field=]. */
  async queryProfile(destination: string, userId: string, field?: string): Promise<JsonObject> {
    return object(
      await this.request(destination, {
        method: 'GET',
        path: '/_matrix/federation/v1/query/profile',
        query: field === undefined ? { user_id: userId } : { user_id: userId, field },
      }),
      'query/profile',
    );
  }
}
