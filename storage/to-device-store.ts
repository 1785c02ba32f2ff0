/**
 * Send-to-device inboxes (client-server "Send-to-Device messaging"): each local
 * device has an inbox of messages on the global 'to_device' stream. A message
 * stays until its device acknowledges it by syncing past its position, and a
 * deleted device's inbox goes with it.
 */
import type { JsonObject } from '../protocol/events.js';

/** One recipient of a send: a device ID, or `*` for every device the user has when the send is stored. */
export interface ToDeviceRecipient {
  readonly userId: string;
  readonly deviceId: string;
  readonly content: JsonObject;
}

export const ALL_DEVICES = '*';

export interface ToDeviceSend {
  readonly sender: string;
  /** The sending device; null (an appservice token) means the send is not deduplicated. */
  readonly senderDeviceId: string | null;
  readonly type: string;
  /** The client's transaction ID: one send per (sender, sender device, type, txnId). */
  readonly txnId: string;
  /** Local users only. Unknown users and devices are skipped, as Synapse does. */
  readonly recipients: readonly ToDeviceRecipient[];
  /**
   * A send from another server (m.direct_to_device): stored once per (origin, message_id),
   * remembered durably in the same write; a repeat is `repeated` and stores nothing.
   */
  readonly remote?: { readonly origin: string; readonly messageId: string; readonly receivedTs: number };
}

export interface ToDeviceSendResult {
  /** The stream position every message of the send was stored at (or was, for a repeat). */
  readonly position: number;
  /** True when this (sender, device, type, txnId) was stored before: nothing new was stored. */
  readonly repeated: boolean;
  /** The devices that received a message, one entry each. */
  readonly delivered: readonly { readonly userId: string; readonly deviceId: string }[];
}

export interface PendingToDeviceMessage {
  readonly position: number;
  /** The event as sync hands it out: `{ sender, type, content }`. */
  readonly event: JsonObject;
}

export interface ToDeviceStore {
  /** Stores one message per recipient device in one write, at one new stream position. */
  sendToDevices(send: ToDeviceSend): Promise<ToDeviceSendResult>;
  /** The device's messages in (afterPosition, upToPosition], oldest first, at most `limit`. */
  pendingToDevice(
    userId: string,
    deviceId: string,
    afterPosition: number,
    upToPosition: number,
    limit: number,
  ): Promise<PendingToDeviceMessage[]>;
  /** Deletes the device's messages at or below `upToPosition`; resolves to how many went. */
  deleteToDeviceUpTo(userId: string, deviceId: string, upToPosition: number): Promise<number>;
  latestToDevicePosition(): Promise<number>;
  /** Forgets the transaction IDs of sends stored before `ts` (a retransmission comes within minutes). */
  forgetToDeviceTransactionsBefore(ts: number): Promise<number>;
  /** Forgets the remote message IDs received before `ts`; resolves to how many went. */
  forgetRemoteMessageIdsBefore(ts: number): Promise<number>;
}
