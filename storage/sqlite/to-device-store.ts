import type { Statement } from 'better-sqlite3';
import type { JsonObject } from '../../protocol/events.js';
import {
  ALL_DEVICES,
  type PendingToDeviceMessage,
  type ToDeviceSend,
  type ToDeviceSendResult,
  type ToDeviceStore,
} from '../to-device-store.js';
import type { SqliteConnection } from './connection.js';
import { latestStreamPosition, nextStreamPosition } from './stream-positions.js';
import type { EnqueueWrite } from './write-queue.js';

interface Statements {
  readonly findTransaction: Statement<[string, string, string, string], { stream_position: number }>;
  readonly recordTransaction: Statement<[string, string, string, string, number, number, string, string]>;
  readonly deviceIds: Statement<[string], { device_id: string }>;
  readonly deviceExists: Statement<[string, string], { found: number }>;
  readonly insertMessage: Statement<[string, string, number, string]>;
  readonly pending: Statement<
    [string, string, number, number, number],
    { stream_position: number; event: string }
  >;
  readonly anyUpTo: Statement<[string, string, number], { found: number }>;
  readonly deleteUpTo: Statement<[string, string, number]>;
  readonly forgetTransactions: Statement<[number]>;
  readonly findRemoteMessage: Statement<[string, string], { found: number }>;
  readonly recordRemoteMessage: Statement<[string, string, number]>;
  readonly forgetRemoteMessages: Statement<[number]>;
}

export class SqliteToDeviceStore implements ToDeviceStore {
  private readonly statements: Statements;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {
    const { sqlite } = connection;
    this.statements = {
      findTransaction: sqlite.prepare(
        `SELECT stream_position FROM to_device_transactions
          WHERE user_id = ? AND device_id = ? AND event_type = ? AND txn_id = ?`,
      ),
      // The sender's device may have been deleted meanwhile: then there is nothing to remember.
      recordTransaction: sqlite.prepare(
        `INSERT INTO to_device_transactions (user_id, device_id, event_type, txn_id, stream_position, created_ts)
         SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?)`,
      ),
      deviceIds: sqlite.prepare('SELECT device_id FROM devices WHERE user_id = ?'),
      deviceExists: sqlite.prepare('SELECT 1 AS found FROM devices WHERE user_id = ? AND device_id = ?'),
      insertMessage: sqlite.prepare(
        'INSERT INTO to_device_inbox (user_id, device_id, stream_position, event) VALUES (?, ?, ?, ?)',
      ),
      pending: sqlite.prepare(
        `SELECT stream_position, event FROM to_device_inbox
          WHERE user_id = ? AND device_id = ? AND stream_position > ? AND stream_position <= ?
          ORDER BY stream_position LIMIT ?`,
      ),
      anyUpTo: sqlite.prepare(
        `SELECT 1 AS found FROM to_device_inbox
          WHERE user_id = ? AND device_id = ? AND stream_position <= ? LIMIT 1`,
      ),
      deleteUpTo: sqlite.prepare(
        'DELETE FROM to_device_inbox WHERE user_id = ? AND device_id = ? AND stream_position <= ?',
      ),
      forgetTransactions: sqlite.prepare('DELETE FROM to_device_transactions WHERE created_ts < ?'),
      findRemoteMessage: sqlite.prepare(
        'SELECT 1 AS found FROM federation_to_device_message_ids WHERE origin = ? AND message_id = ?',
      ),
      recordRemoteMessage: sqlite.prepare(
        'INSERT INTO federation_to_device_message_ids (origin, message_id, received_ts) VALUES (?, ?, ?)',
      ),
      forgetRemoteMessages: sqlite.prepare(
        'DELETE FROM federation_to_device_message_ids WHERE received_ts < ?',
      ),
    };
  }

  sendToDevices(send: ToDeviceSend): Promise<ToDeviceSendResult> {
    const recipients = send.recipients.map((r) => ({ ...r, content: JSON.stringify(r.content) }));
    const { sender, senderDeviceId, type, txnId, remote } = send;
    const s = this.statements;
    return this.enqueue((): ToDeviceSendResult => {
      if (remote !== undefined) {
        if (s.findRemoteMessage.get(remote.origin, remote.messageId) !== undefined) {
          return {
            position: latestStreamPosition(this.connection.db, 'to_device'),
            repeated: true,
            delivered: [],
          };
        }
        s.recordRemoteMessage.run(remote.origin, remote.messageId, remote.receivedTs);
      }
      if (senderDeviceId !== null) {
        const earlier = s.findTransaction.get(sender, senderDeviceId, type, txnId);
        if (earlier !== undefined)
          return { position: earlier.stream_position, repeated: true, delivered: [] };
      }
      // user -> device -> content JSON; a `*` entry first, so that a message naming a device wins over it.
      const targets = new Map<string, Map<string, string>>();
      const forUser = (userId: string) => {
        let devices = targets.get(userId);
        if (devices === undefined) {
          devices = new Map();
          targets.set(userId, devices);
        }
        return devices;
      };
      for (const r of recipients) {
        if (r.deviceId !== ALL_DEVICES) continue;
        const devices = forUser(r.userId);
        for (const { device_id } of s.deviceIds.all(r.userId)) devices.set(device_id, r.content);
      }
      for (const r of recipients) {
        if (r.deviceId === ALL_DEVICES || s.deviceExists.get(r.userId, r.deviceId) === undefined) continue;
        forUser(r.userId).set(r.deviceId, r.content);
      }

      const position = nextStreamPosition(this.connection.db, 'to_device');
      const senderJson = JSON.stringify(sender);
      const typeJson = JSON.stringify(type);
      const delivered: { userId: string; deviceId: string }[] = [];
      for (const [userId, devices] of targets) {
        for (const [deviceId, content] of devices) {
          s.insertMessage.run(
            userId,
            deviceId,
            position,
            `{"sender":${senderJson},"type":${typeJson},"content":${content}}`,
          );
          delivered.push({ userId, deviceId });
        }
      }
      if (senderDeviceId !== null) {
        s.recordTransaction.run(
          sender,
          senderDeviceId,
          type,
          txnId,
          position,
          Date.now(),
          sender,
          senderDeviceId,
        );
      }
      return { position, repeated: false, delivered };
    });
  }

  async pendingToDevice(
    userId: string,
    deviceId: string,
    afterPosition: number,
    upToPosition: number,
    limit: number,
  ): Promise<PendingToDeviceMessage[]> {
    if (limit <= 0 || upToPosition <= afterPosition) return [];
    return this.statements.pending
      .all(userId, deviceId, afterPosition, upToPosition, limit)
      .map((row) => ({ position: row.stream_position, event: JSON.parse(row.event) as JsonObject }));
  }

  async deleteToDeviceUpTo(userId: string, deviceId: string, upToPosition: number): Promise<number> {
    // Most syncs have nothing to acknowledge: a read spares them a write.
    if (this.statements.anyUpTo.get(userId, deviceId, upToPosition) === undefined) return 0;
    return this.enqueue(() => this.statements.deleteUpTo.run(userId, deviceId, upToPosition).changes);
  }

  forgetToDeviceTransactionsBefore(ts: number): Promise<number> {
    return this.enqueue(() => this.statements.forgetTransactions.run(ts).changes);
  }

  forgetRemoteMessageIdsBefore(ts: number): Promise<number> {
    return this.enqueue(() => this.statements.forgetRemoteMessages.run(ts).changes);
  }

  async latestToDevicePosition(): Promise<number> {
    return latestStreamPosition(this.connection.db, 'to_device');
  }
}
