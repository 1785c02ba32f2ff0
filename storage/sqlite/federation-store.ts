import type Database from 'better-sqlite3';
import type { JsonObject } from '../../protocol/events.js';
import type { PublishedKey } from '../../protocol/server-keys.js';
import type {
  ClaimedTransaction,
  DestinationRetry,
  FederationStore,
  OutboxItem,
  StoredKeyResponse,
} from '../federation-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

interface KeyRow {
  server_name: string;
  key_id: string;
  public_key: string;
  valid_until_ts: number;
  expired: number;
}

interface OutboxRow {
  position: number;
  kind: string;
  json: string;
  txn_id: string | null;
}

export class SqliteFederationStore implements FederationStore {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  /** Statements prepared once each (preparing costs more than running these small queries). */
  private readonly statements = new Map<string, Database.Statement>();

  private prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.connection.sqlite.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  putServerKeys(
    serverName: string,
    keys: readonly PublishedKey[],
    response: JsonObject,
    fetchedTs: number,
  ): Promise<void> {
    const responseJson = JSON.stringify(response);
    const validUntilTs = typeof response.valid_until_ts === 'number' ? response.valid_until_ts : 0;
    return this.enqueue(() => {
      const putKey = this.prepare(
        `INSERT INTO federation_server_keys (server_name, key_id, public_key, valid_until_ts, expired, fetched_ts)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = excluded.public_key,
           valid_until_ts = excluded.valid_until_ts, expired = excluded.expired, fetched_ts = excluded.fetched_ts`,
      );
      for (const key of keys) {
        putKey.run(serverName, key.keyId, key.publicKey, key.validUntilTs, key.expired ? 1 : 0, fetchedTs);
      }
      this.prepare(
        `INSERT INTO federation_server_key_responses (server_name, response, valid_until_ts, fetched_ts)
           VALUES (?, ?, ?, ?)
           ON CONFLICT (server_name) DO UPDATE SET response = excluded.response,
             valid_until_ts = excluded.valid_until_ts, fetched_ts = excluded.fetched_ts`,
      ).run(serverName, responseJson, validUntilTs, fetchedTs);
    });
  }

  async getServerKey(serverName: string, keyId: string): Promise<PublishedKey | null> {
    const row = this.prepare<[string, string], KeyRow>(
      'SELECT * FROM federation_server_keys WHERE server_name = ? AND key_id = ?',
    ).get(serverName, keyId);
    return row
      ? {
          serverName: row.server_name,
          keyId: row.key_id,
          publicKey: row.public_key,
          validUntilTs: row.valid_until_ts,
          expired: row.expired === 1,
        }
      : null;
  }

  async getServerKeyResponse(serverName: string): Promise<StoredKeyResponse | null> {
    const row = this.prepare<[string], { response: string; valid_until_ts: number; fetched_ts: number }>(
      'SELECT response, valid_until_ts, fetched_ts FROM federation_server_key_responses WHERE server_name = ?',
    ).get(serverName);
    return row
      ? {
          response: JSON.parse(row.response) as JsonObject,
          validUntilTs: row.valid_until_ts,
          fetchedTs: row.fetched_ts,
        }
      : null;
  }

  enqueueOutbound(items: readonly OutboxItem[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return this.enqueue(() => {
      const insert = this.prepare(
        'INSERT INTO federation_outbox (destination, kind, json, expires_ts) VALUES (?, ?, ?, ?)',
      );
      for (const item of items) insert.run(item.destination, item.kind, item.json, item.expiresTs ?? null);
    });
  }

  claimTransaction(
    destination: string,
    maxPdus: number,
    maxEdus: number,
    nowTs = Date.now(),
  ): Promise<ClaimedTransaction | null> {
    return this.enqueue(() => {
      const claimed = this.prepare<[string], OutboxRow>(
        `SELECT position, kind, json, txn_id FROM federation_outbox
            WHERE destination = ? AND txn_id IS NOT NULL ORDER BY position`,
      ).all(destination);
      if (claimed.length > 0) return transactionOf(claimed[0]!.txn_id!, claimed);
      this.prepare(
        'DELETE FROM federation_outbox WHERE destination = ? AND txn_id IS NULL AND expires_ts IS NOT NULL AND expires_ts <= ?',
      ).run(destination, nowTs);
      const select = this.prepare<[string, string, number], OutboxRow>(
        `SELECT position, kind, json, txn_id FROM federation_outbox
          WHERE destination = ? AND kind = ? AND txn_id IS NULL ORDER BY position LIMIT ?`,
      );
      const rows = [...select.all(destination, 'pdu', maxPdus), ...select.all(destination, 'edu', maxEdus)];
      if (rows.length === 0) return null;
      rows.sort((a, b) => a.position - b.position);
      // Positions are never reused (AUTOINCREMENT), so the first one names a transaction no other shares.
      const txnId = `m${rows[0]!.position}`;
      const mark = this.prepare('UPDATE federation_outbox SET txn_id = ? WHERE position = ?');
      for (const row of rows) mark.run(txnId, row.position);
      return transactionOf(txnId, rows);
    });
  }

  completeTransaction(destination: string, txnId: string): Promise<void> {
    return this.enqueue(() => {
      this.prepare('DELETE FROM federation_outbox WHERE destination = ? AND txn_id = ?').run(
        destination,
        txnId,
      );
    });
  }

  async pendingDestinations(): Promise<{ destination: string; retry: DestinationRetry | null }[]> {
    const rows = this.prepare<
      [],
      { destination: string; retry_after_ts: number | null; backoff_ms: number | null }
    >(
      `SELECT o.destination, d.retry_after_ts, d.backoff_ms
           FROM (SELECT DISTINCT destination FROM federation_outbox) o
           LEFT JOIN federation_destinations d ON d.destination = o.destination`,
    ).all();
    return rows.map((row) => ({
      destination: row.destination,
      retry:
        row.retry_after_ts === null
          ? null
          : { retryAfterTs: row.retry_after_ts, backoffMs: row.backoff_ms ?? 0 },
    }));
  }

  async getRetry(destination: string): Promise<DestinationRetry | null> {
    const row = this.prepare<[string], { retry_after_ts: number; backoff_ms: number }>(
      'SELECT retry_after_ts, backoff_ms FROM federation_destinations WHERE destination = ?',
    ).get(destination);
    return row ? { retryAfterTs: row.retry_after_ts, backoffMs: row.backoff_ms } : null;
  }

  setRetry(destination: string, retry: DestinationRetry | null): Promise<void> {
    return this.enqueue(() => {
      if (retry === null) {
        this.prepare('DELETE FROM federation_destinations WHERE destination = ?').run(destination);
        return;
      }
      this.prepare(
        `INSERT INTO federation_destinations (destination, retry_after_ts, backoff_ms) VALUES (?, ?, ?)
           ON CONFLICT (destination) DO UPDATE SET retry_after_ts = excluded.retry_after_ts,
             backoff_ms = excluded.backoff_ms`,
      ).run(destination, retry.retryAfterTs, retry.backoffMs);
    });
  }

  async getInboundTransaction(origin: string, txnId: string): Promise<JsonObject | null> {
    const row = this.prepare<[string, string], { response: string }>(
      'SELECT response FROM federation_inbound_transactions WHERE origin = ? AND txn_id = ?',
    ).get(origin, txnId);
    return row ? (JSON.parse(row.response) as JsonObject) : null;
  }

  putInboundTransaction(
    origin: string,
    txnId: string,
    response: JsonObject,
    receivedTs: number,
  ): Promise<void> {
    const json = JSON.stringify(response);
    return this.enqueue(() => {
      this.prepare(
        `INSERT OR REPLACE INTO federation_inbound_transactions (origin, txn_id, response, received_ts)
           VALUES (?, ?, ?, ?)`,
      ).run(origin, txnId, json, receivedTs);
    });
  }

  pruneInboundTransactions(beforeTs: number): Promise<void> {
    return this.enqueue(() => {
      this.prepare('DELETE FROM federation_inbound_transactions WHERE received_ts < ?').run(beforeTs);
    });
  }
}

function transactionOf(txnId: string, rows: readonly OutboxRow[]): ClaimedTransaction {
  return {
    txnId,
    pdus: rows.filter((row) => row.kind === 'pdu').map((row) => row.json),
    edus: rows.filter((row) => row.kind === 'edu').map((row) => row.json),
  };
}
