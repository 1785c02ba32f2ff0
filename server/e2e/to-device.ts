/**
 * Send-to-device messaging (client-server "Send-to-Device messaging"): stores a
 * send in the recipients' device inboxes, wakes their syncs, and hands each
 * device its pending messages, oldest first, until it acknowledges them by
 * syncing past them (so a response lost on the way is sent again).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import { belongsToServer, parseUserId } from '../../protocol/identifiers.js';
import type { ToDeviceRecipient, ToDeviceStore } from '../../storage/to-device-store.js';
import { MatrixError } from '../errors.js';
import type { SyncNotifier } from '../sync/notifier.js';

/** spec "Server behaviour": 100 messages per /sync response is the recommended limit. */
export const TO_DEVICE_MESSAGES_PER_SYNC = 100;

/** How long a send's transaction ID is remembered (clients retry within minutes). */
export const TO_DEVICE_TRANSACTION_LIFETIME_MS = 24 * 3600_000;
const TRANSACTION_SWEEP_INTERVAL_MS = 3600_000;

export interface ToDeviceSender {
  readonly userId: string;
  /** Null for a token without a device (an appservice): its sends are not deduplicated. */
  readonly deviceId: string | null;
}

export interface ToDeviceSendRequest {
  readonly type: string;
  readonly txnId: string;
  /** user ID -> device ID (or `*`) -> content, as in the request body. */
  readonly messages: Readonly<Record<string, Readonly<Record<string, JsonObject>>>>;
}

/** The content of an m.direct_to_device EDU (server-server "Send-to-device messaging"). */
export interface DirectToDeviceContent {
  readonly sender: string;
  readonly type: string;
  readonly message_id: string;
  readonly messages: Record<string, Record<string, JsonObject>>;
}

/** Queues an m.direct_to_device EDU for a server (federation supplies it). */
export type RemoteToDeviceSender = (destination: string, content: DirectToDeviceContent) => Promise<void>;

/** How long a remote server's message ID is remembered (its retries come within hours at most). */
export const REMOTE_MESSAGE_ID_LIFETIME_MS = 7 * 24 * 3600_000;

export class ToDeviceService {
  constructor(
    private readonly deps: {
      readonly store: ToDeviceStore;
      readonly serverName: string;
      readonly notifier: () => SyncNotifier;
      readonly log: Logger;
      readonly now?: () => number;
      /** Federation (#7); absent, messages for other servers' users are dropped. */
      readonly remote?: () => RemoteToDeviceSender | undefined;
    },
  ) {}

  private lastSweep = 0;

  /**
   * Stores the messages for local recipients once per transaction and wakes their
   * syncs. Messages for users of other servers go to each server as one
   * m.direct_to_device EDU, whose message_id is derived from the send's
   * transaction, so a retried send is recognised by the receiver too.
   * @throws MatrixError 400 M_INVALID_PARAM for a key of `messages` that is not a user ID.
   */
  async send(sender: ToDeviceSender, request: ToDeviceSendRequest): Promise<void> {
    const recipients: ToDeviceRecipient[] = [];
    const byServer = new Map<string, Record<string, Record<string, JsonObject>>>();
    for (const [userId, byDevice] of Object.entries(request.messages)) {
      let serverName: string;
      try {
        serverName = parseUserId(userId, { historical: true }).serverName;
      } catch {
        throw MatrixError.invalidParam(`Not a user ID: ${JSON.stringify(userId)}`);
      }
      if (serverName !== this.deps.serverName) {
        const messages = byServer.get(serverName) ?? {};
        messages[userId] = { ...byDevice };
        byServer.set(serverName, messages);
        continue;
      }
      for (const [deviceId, content] of Object.entries(byDevice))
        recipients.push({ userId, deviceId, content });
    }
    const result = await this.deps.store.sendToDevices({
      sender: sender.userId,
      senderDeviceId: sender.deviceId,
      type: request.type,
      txnId: request.txnId,
      recipients,
    });
    if (result.delivered.length > 0) {
      this.deps.notifier().notifyUsers(new Set(result.delivered.map((d) => d.userId)), 'to_device');
    }
    this.sweepTransactions();
    if (byServer.size > 0) await this.sendRemote(sender, request, byServer);
  }

  private async sendRemote(
    sender: ToDeviceSender,
    request: ToDeviceSendRequest,
    byServer: Map<string, Record<string, Record<string, JsonObject>>>,
  ): Promise<void> {
    const remote = this.deps.remote?.();
    if (remote === undefined) return;
    const messageId = createHash('sha256')
      .update(JSON.stringify([sender.userId, sender.deviceId, request.type, request.txnId]))
      .digest('base64url')
      .slice(0, 22);
    for (const [destination, messages] of byServer) {
      await remote(destination, {
        sender: sender.userId,
        type: request.type,
        message_id: messageId,
        messages,
      });
    }
  }

  /**
   * An m.direct_to_device EDU from `origin`: stored for the local devices it
   * names (`*` for all), once per message_id. The sender must be a user of
   * the origin.
   */
  async receiveRemote(origin: string, content: unknown): Promise<void> {
    if (!isRecord(content)) return;
    const { sender, type, message_id: messageId, messages } = content;
    if (typeof sender !== 'string' || typeof type !== 'string' || typeof messageId !== 'string') return;
    if (!isRecord(messages)) return;
    let senderServer: string;
    try {
      senderServer = parseUserId(sender, { historical: true }).serverName;
    } catch {
      return;
    }
    if (senderServer !== origin) return;
    this.sweepTransactions();
    const recipients: ToDeviceRecipient[] = [];
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!belongsToServer(userId, this.deps.serverName) || !isRecord(byDevice)) continue;
      for (const [deviceId, message] of Object.entries(byDevice)) {
        if (isRecord(message)) recipients.push({ userId, deviceId, content: message as JsonObject });
      }
    }
    if (recipients.length === 0) return;
    const result = await this.deps.store.sendToDevices({
      sender,
      senderDeviceId: null,
      type,
      txnId: messageId,
      recipients,
      // Remembered durably with the messages: a retry after our restart is still a repeat.
      remote: { origin, messageId, receivedTs: (this.deps.now ?? Date.now)() },
    });
    if (result.delivered.length > 0) {
      this.deps.notifier().notifyUsers(new Set(result.delivered.map((d) => d.userId)), 'to_device');
    }
  }

  /**
   * At most hourly, on a send or a receipt from another server: forgets transaction IDs older
   * than a day and remote message IDs older than a week, so the tables do not grow for ever.
   */
  private sweepTransactions(): void {
    const now = (this.deps.now ?? Date.now)();
    if (now - this.lastSweep < TRANSACTION_SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.deps.store
      .forgetToDeviceTransactionsBefore(now - TO_DEVICE_TRANSACTION_LIFETIME_MS)
      .catch((error: unknown) => {
        this.deps.log.warn({ err: error }, 'Forgetting old to-device transaction IDs failed');
      });
    this.deps.store
      .forgetRemoteMessageIdsBefore(now - REMOTE_MESSAGE_ID_LIFETIME_MS)
      .catch((error: unknown) => {
        this.deps.log.warn({ err: error }, 'Forgetting old remote to-device message IDs failed');
      });
  }

  /**
   * The device's messages in (afterPosition, upToPosition], at most `limit`, and
   * the position a token may advance to: `upToPosition` when everything fitted,
   * else the position of the last message handed out (the rest comes next time).
   */
  async pending(
    userId: string,
    deviceId: string,
    afterPosition: number,
    upToPosition: number,
    limit: number,
  ): Promise<{ events: JsonObject[]; position: number }> {
    const messages = await this.deps.store.pendingToDevice(
      userId,
      deviceId,
      afterPosition,
      upToPosition,
      limit,
    );
    const position =
      messages.length >= limit && messages.length > 0
        ? messages[messages.length - 1]!.position
        : upToPosition;
    return { events: messages.map((message) => message.event), position: Math.max(position, afterPosition) };
  }

  /** The client synced past `upToPosition`: what it was handed up to there is delivered. */
  async acknowledge(userId: string, deviceId: string, upToPosition: number): Promise<void> {
    if (upToPosition <= 0) return;
    await this.deps.store.deleteToDeviceUpTo(userId, deviceId, upToPosition);
  }

  latestPosition(): Promise<number> {
    return this.deps.store.latestToDevicePosition();
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
