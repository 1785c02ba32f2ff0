/**
 * Redactions received over federation (inbound PDUs, missing events, backfill). From room
 * version 3 the auth rules let any member send one; the receiving server decides on use
 * (server-server "Redactions"): it strips its target when the sender is on the target's
 * sender's server, or has the redact power level (in the room's current power levels).
 * Storage applies it whenever the target is stored, now or when it arrives later.
 */

import type { RoomEvent } from '../protocol/events.js';
import { serverNameOfId as serverOfUser } from '../protocol/identifiers.js';
import { redactedEventIdOf } from '../protocol/redaction.js';
import type { RoomReads } from '../server/rooms/room-reads.js';
import type { Storage } from '../storage/storage.js';
import type { FederatedRoom } from './inbound-pdus.js';

/**
 * Hands an accepted redaction to storage, which applies it when (and if) its target is stored.
 * @returns the target's event ID (undefined when the redaction names none).
 */
export async function applyFederatedRedaction(
  storage: Storage,
  reads: Pick<RoomReads, 'powers'>,
  room: FederatedRoom,
  redaction: RoomEvent,
): Promise<string | undefined> {
  const targetEventId = redactedEventIdOf(redaction.pdu, room.rules);
  if (targetEventId === undefined) return undefined;
  const senderServer = serverOfUser(redaction.pdu.sender);
  const target = await storage.events.getEvent(targetEventId);
  // Same server: no power levels needed (the common case, a user redacting their own event).
  const sameServer = target !== null && serverOfUser(target.pdu.sender) === senderServer;
  await storage.events.redactWhenStored({
    redactionEventId: redaction.eventId,
    targetEventId,
    roomId: room.roomId,
    roomVersion: room.rules.id,
    senderServer,
    senderMayRedactAny: !sameServer && (await mayRedactAny(reads, room.roomId, redaction.pdu.sender)),
  });
  return targetEventId;
}

/** Whether the user has the redact level in the room's current power levels. */
async function mayRedactAny(
  reads: Pick<RoomReads, 'powers'>,
  roomId: string,
  userId: string,
): Promise<boolean> {
  try {
    const powers = await reads.powers(roomId);
    return powers !== null && powers.levelOf(userId) >= powers.levels.redact;
  } catch {
    // Power levels the room version refuses grant nobody the redact level.
    return false;
  }
}
