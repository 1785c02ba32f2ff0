import type { JsonObject, Pdu, RoomEvent } from '../../protocol/events.js';

export interface TestEventFields {
  readonly type?: string;
  readonly stateKey?: string;
  readonly sender?: string;
  readonly content?: JsonObject;
  readonly prevEvents?: readonly string[];
  readonly authEvents?: readonly string[];
  readonly depth?: number;
  readonly eventId?: string;
  readonly originServerTs?: number;
}

/**
 * Builds room events for storage tests. Storage stores what it is given and
 * checks no hashes or signatures, so IDs here are just unique strings.
 */
export class TestRoom {
  private counter = 0;

  constructor(readonly roomId: string) {}

  event(fields: TestEventFields = {}): RoomEvent {
    this.counter += 1;
    const pdu: Pdu = {
      type: fields.type ?? 'm.room.message',
      room_id: this.roomId,
      sender: fields.sender ?? '@alice:example.org',
      origin_server_ts: fields.originServerTs ?? 1_700_000_000_000 + this.counter,
      content: fields.content ?? { msgtype: 'm.text', body: `message ${this.counter}` },
      depth: fields.depth ?? this.counter,
      prev_events: [...(fields.prevEvents ?? [])],
      auth_events: [...(fields.authEvents ?? [])],
      hashes: { sha256: 'aGFzaA' },
      signatures: { 'example.org': { 'ed25519:a': 'c2ln' } },
    };
    if (fields.stateKey !== undefined) pdu.state_key = fields.stateKey;
    const eventId =
      fields.eventId ??
      `$${this.roomId.slice(1, 6)}-${this.counter}-${Math.random().toString(36).slice(2, 10)}`;
    return { eventId, roomId: this.roomId, pdu };
  }
}
