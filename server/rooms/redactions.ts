/**
 * Redactions by local users (client-server "Redactions", redaction.yaml). From room version 3
 * the auth rules let any member redact anything ("the receiving server checks it on use"), so
 * the sending server decides here, as Synapse does: the redact power level, or one's own event.
 * Once the redaction is stored, the room version's redaction algorithm is applied to the target,
 * at once or, for a target this server does not have yet, when it arrives.
 */
import type { JsonObject } from '../../protocol/events.js';
import type { Storage } from '../../storage/storage.js';
import { MatrixError } from '../errors.js';
import type { ClientTransaction, RoomEventSender, SentEvent } from './room-event-sender.js';
import type { RoomReads } from './room-reads.js';

export interface RedactRequest {
  readonly roomId: string;
  readonly sender: string;
  readonly targetEventId: string;
  readonly reason?: string;
  readonly txn?: ClientTransaction;
}

/** State whose loss would break the room or its federation: Synapse refuses to redact these. */
const UNREDACTABLE_TYPES: ReadonlySet<string> = new Set(['m.room.create', 'm.room.server_acl']);

export class RoomRedactions {
  constructor(
    private readonly storage: Storage,
    private readonly sender: RoomEventSender,
    private readonly reads: RoomReads,
  ) {}

  /**
   * Sends the redaction, then strips the stored target. A target this server does not
   * have is allowed only to those at the redact level (the redaction waits for it).
   * @throws MatrixError M_FORBIDDEN (not in the room, not allowed), M_NOT_FOUND (target unknown
   *   to a user below the redact level), M_INVALID_PARAM (target in another room).
   */
  async redact(request: RedactRequest): Promise<SentEvent> {
    const { roomId, sender, targetEventId } = request;
    const powers = await this.reads.powers(roomId);
    if (powers === null) throw MatrixError.forbidden(`User ${sender} is not in room ${roomId}`);
    const stored = await this.storage.events.getEvent(targetEventId);
    const target = stored?.roomId === roomId && !stored.outlier ? stored : null;
    if (stored !== null && target === null) {
      throw MatrixError.invalidParam('Cannot redact an event of another room');
    }
    if (target !== null && UNREDACTABLE_TYPES.has(target.pdu.type)) {
      throw MatrixError.forbidden(`Redacting ${target.pdu.type} events is not permitted`);
    }
    const senderMayRedactAny = powers.levelOf(sender) >= powers.levels.redact;
    if (!senderMayRedactAny) {
      if (target === null) throw MatrixError.notFound(`Could not find event ${targetEventId}`);
      if (target.pdu.sender !== sender) {
        throw MatrixError.forbidden("You don't have permission to redact other users' events");
      }
    }
    const content: JsonObject = request.reason === undefined ? {} : { reason: request.reason };
    const sent = await this.sender.sendEvent({
      roomId,
      sender,
      type: 'm.room.redaction',
      content,
      redacts: targetEventId,
      ...(request.txn === undefined ? {} : { txn: request.txn }),
    });
    // Applied now, or when the target reaches this server (storage keeps it until then).
    await this.storage.events.redactWhenStored({
      redactionEventId: sent.eventId,
      targetEventId,
      roomId,
      roomVersion: powers.rules.id,
      senderServer: sender.slice(sender.indexOf(':') + 1),
      senderMayRedactAny,
    });
    return sent;
  }
}
