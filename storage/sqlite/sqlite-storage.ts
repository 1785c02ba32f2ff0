import path from 'node:path';
import { StorageError } from '../errors.js';
import { type MigrationReport, runMigrations } from '../migrations.js';
import type { Storage, WriteTransaction } from '../storage.js';
import { SqliteAccountDataStore } from './account-data-store.js';
import { SqliteAccountStore } from './account-store.js';
import { SqliteAppserviceStore } from './appservice-store.js';
import { BackgroundCheckpointer, hasWalFile } from './checkpointer.js';
import { ColdArchive, withColdReads } from './cold-archive.js';
import {
  openSqliteConnection,
  type SqliteConnection,
  type SqliteConnectionOptions,
  sqliteMigrationTarget,
} from './connection.js';
import { SqliteContentReportStore } from './content-report-store.js';
import { SqliteDeviceStore } from './device-store.js';
import { SqliteE2eKeyStore } from './e2e-key-store.js';
import { type EventStatements, prepareEventStatements } from './event-statements.js';
import { SqliteEventStore } from './event-store.js';
import { SqliteFederationStore } from './federation-store.js';
import { SqliteFilterStore } from './filter-store.js';
import { SqliteKeyBackupStore } from './key-backup-store.js';
import { SqliteLoginTokenStore } from './login-token-store.js';
import { SqliteMediaStore } from './media-store.js';
import { SqliteMembershipStore } from './membership-store.js';
import { sqliteMigrations } from './migrations.js';
import { SqlitePresenceStore } from './presence-store.js';
import { SqlitePushStore } from './push-store.js';
import { SqliteReceiptStore } from './receipt-store.js';
import { SqliteRegistrationTokenStore } from './registration-token-store.js';
import { SqliteRelationStore } from './relation-store.js';
import { SqliteRoomStore } from './room-store.js';
import { SqliteSearchIndex } from './search-index.js';
import { SqliteSessionStore } from './session-store.js';
import { translateSqliteError } from './sqlite-errors.js';
import { SqliteStateStore } from './state-store.js';
import { SqliteToDeviceStore } from './to-device-store.js';
import { SqliteTransactionIdStore } from './transaction-id-store.js';
import { SqliteUiaSessionStore } from './uia-session-store.js';
import { type EnqueueWrite, SqliteWriteQueue, WriteBatch } from './write-queue.js';

export type SqliteStorageOptions = SqliteConnectionOptions;

export interface SqliteStorage extends Storage {
  /** What the migrations did at open. */
  readonly migrations: MigrationReport;
  /** `PRAGMA integrity_check` findings; `['ok']` for a sound database. */
  integrityCheck(): Promise<string[]>;
  /** Write transactions committed since open (benchmarks). */
  readonly commits: number;
}

/** Opens (creating if needed) the database at `options.path` and migrates it to the current schema. */
export async function openSqliteStorage(options: SqliteStorageOptions): Promise<SqliteStorage> {
  const connection = openSqliteConnection(options);
  try {
    const report = await runMigrations(sqliteMigrationTarget(connection.sqlite), sqliteMigrations);
    const coldDirectory =
      options.coldDirectory ??
      (options.path === ':memory:' ? null : path.join(path.dirname(options.path), 'cold-archive'));
    return new SqliteStorageImpl(
      connection,
      report,
      coldDirectory,
      hasWalFile(options.path) ? options.path : undefined,
    );
  } catch (error) {
    connection.sqlite.close();
    throw error;
  }
}

function storesOver(
  connection: SqliteConnection,
  statements: EventStatements,
  enqueue: EnqueueWrite,
  cold: ColdArchive,
) {
  return {
    events: withColdReads(new SqliteEventStore(connection, enqueue, statements), cold, enqueue),
    state: new SqliteStateStore(connection, enqueue),
    accounts: new SqliteAccountStore(connection, enqueue),
    devices: new SqliteDeviceStore(connection, enqueue),
    sessions: new SqliteSessionStore(connection, enqueue),
    transactionIds: new SqliteTransactionIdStore(connection, enqueue, statements),
    accountData: new SqliteAccountDataStore(connection, enqueue),
    rooms: new SqliteRoomStore(connection, enqueue),
  };
}

/**
 * The writers of one `transaction` call, each made on first use: a send touches two of
 * the eight, and building them all for every transaction showed in send-path profiles.
 */
class TransactionWriters implements WriteTransaction {
  private eventWriter: WriteTransaction['events'] | undefined;
  private stateWriter: WriteTransaction['state'] | undefined;
  private accountWriter: WriteTransaction['accounts'] | undefined;
  private deviceWriter: WriteTransaction['devices'] | undefined;
  private sessionWriter: WriteTransaction['sessions'] | undefined;
  private transactionIdWriter: WriteTransaction['transactionIds'] | undefined;
  private accountDataWriter: WriteTransaction['accountData'] | undefined;
  private roomWriter: WriteTransaction['rooms'] | undefined;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly statements: EventStatements,
    private readonly enqueue: EnqueueWrite,
    private readonly cold: ColdArchive,
  ) {}

  get events(): WriteTransaction['events'] {
    this.eventWriter ??= withColdReads(
      new SqliteEventStore(this.connection, this.enqueue, this.statements),
      this.cold,
      this.enqueue,
    );
    return this.eventWriter;
  }
  get state(): WriteTransaction['state'] {
    this.stateWriter ??= new SqliteStateStore(this.connection, this.enqueue);
    return this.stateWriter;
  }
  get accounts(): WriteTransaction['accounts'] {
    this.accountWriter ??= new SqliteAccountStore(this.connection, this.enqueue);
    return this.accountWriter;
  }
  get devices(): WriteTransaction['devices'] {
    this.deviceWriter ??= new SqliteDeviceStore(this.connection, this.enqueue);
    return this.deviceWriter;
  }
  get sessions(): WriteTransaction['sessions'] {
    this.sessionWriter ??= new SqliteSessionStore(this.connection, this.enqueue);
    return this.sessionWriter;
  }
  get transactionIds(): WriteTransaction['transactionIds'] {
    this.transactionIdWriter ??= new SqliteTransactionIdStore(this.connection, this.enqueue, this.statements);
    return this.transactionIdWriter;
  }
  get accountData(): WriteTransaction['accountData'] {
    this.accountDataWriter ??= new SqliteAccountDataStore(this.connection, this.enqueue);
    return this.accountDataWriter;
  }
  get rooms(): WriteTransaction['rooms'] {
    this.roomWriter ??= new SqliteRoomStore(this.connection, this.enqueue);
    return this.roomWriter;
  }
}

/** The constructor of async functions, which a transaction callback must not be. */
const AsyncFunction = (async () => {}).constructor;

class SqliteStorageImpl implements SqliteStorage {
  readonly events;
  readonly state;
  readonly accounts;
  readonly devices;
  readonly sessions;
  readonly transactionIds;
  readonly accountData;
  readonly rooms;
  readonly registrationTokens: SqliteRegistrationTokenStore;
  readonly loginTokens: SqliteLoginTokenStore;
  readonly presence: SqlitePresenceStore;
  readonly uiaSessions: SqliteUiaSessionStore;
  readonly memberships: SqliteMembershipStore;
  readonly receipts: SqliteReceiptStore;
  readonly relations: SqliteRelationStore;
  readonly filters: SqliteFilterStore;
  readonly e2eKeys: SqliteE2eKeyStore;
  readonly toDevice: SqliteToDeviceStore;
  readonly keyBackups: SqliteKeyBackupStore;
  readonly media: SqliteMediaStore;
  readonly search: SqliteSearchIndex;
  readonly coldStorage: ColdArchive;
  readonly push: SqlitePushStore;
  readonly contentReports: SqliteContentReportStore;
  readonly federation: SqliteFederationStore;
  readonly appservices: SqliteAppserviceStore;
  private readonly writeQueue: SqliteWriteQueue;
  private readonly eventStatements: EventStatements;
  private readonly checkpointer: BackgroundCheckpointer | undefined;
  private closed = false;

  constructor(
    private readonly connection: SqliteConnection,
    readonly migrations: MigrationReport,
    coldDirectory: string | null,
    /** The database file, whose WAL the checkpointer keeps short; none for an in-memory database. */
    walDatabasePath: string | undefined,
  ) {
    this.writeQueue = new SqliteWriteQueue(connection.sqlite, translateSqliteError, () =>
      this.checkpointer?.noteCommit(),
    );
    this.checkpointer =
      walDatabasePath === undefined
        ? undefined
        : new BackgroundCheckpointer(walDatabasePath, connection.sqlite, this.writeQueue);
    this.eventStatements = prepareEventStatements(connection.sqlite);
    this.coldStorage = new ColdArchive(connection, this.enqueueAlone, coldDirectory);
    const stores = storesOver(connection, this.eventStatements, this.enqueueAlone, this.coldStorage);
    this.events = stores.events;
    this.state = stores.state;
    this.accounts = stores.accounts;
    this.devices = stores.devices;
    this.sessions = stores.sessions;
    this.transactionIds = stores.transactionIds;
    this.accountData = stores.accountData;
    this.rooms = stores.rooms;
    this.registrationTokens = new SqliteRegistrationTokenStore(connection, this.enqueueAlone);
    this.loginTokens = new SqliteLoginTokenStore(connection, this.enqueueAlone);
    this.presence = new SqlitePresenceStore(connection, this.enqueueAlone);
    this.uiaSessions = new SqliteUiaSessionStore(connection, this.enqueueAlone);
    this.memberships = new SqliteMembershipStore(connection, this.enqueueAlone);
    this.receipts = new SqliteReceiptStore(connection, this.enqueueAlone);
    this.relations = new SqliteRelationStore(connection);
    this.filters = new SqliteFilterStore(connection, this.enqueueAlone);
    this.e2eKeys = new SqliteE2eKeyStore(connection, this.enqueueAlone);
    this.toDevice = new SqliteToDeviceStore(connection, this.enqueueAlone);
    this.keyBackups = new SqliteKeyBackupStore(connection, this.enqueueAlone);
    this.media = new SqliteMediaStore(connection, this.enqueueAlone);
    this.search = new SqliteSearchIndex(connection, this.enqueueAlone);
    this.push = new SqlitePushStore(connection, this.enqueueAlone);
    this.contentReports = new SqliteContentReportStore(connection, this.enqueueAlone);
    this.federation = new SqliteFederationStore(connection, this.enqueueAlone);
    this.appservices = new SqliteAppserviceStore(connection, this.enqueueAlone);
  }

  /** A writer called outside `transaction` is a transaction of its own (still group-committed). */
  private readonly enqueueAlone: EnqueueWrite = (write) => this.enqueueBatchOf(write);

  private enqueueBatchOf<T>(write: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    const batch = new WriteBatch(false);
    const result = batch.enqueue(write);
    // The caller holds `result`, which carries any failure.
    this.writeQueue.submit(batch).catch(() => {});
    return result;
  }

  async transaction(queueWrites: (tx: WriteTransaction) => void): Promise<void> {
    if (this.closed) throw closedError();
    if (queueWrites instanceof AsyncFunction) {
      throw new StorageError(
        'INVALID_TRANSACTION',
        'transaction callbacks must be synchronous: read first, then queue the writes',
      );
    }
    const batch = new WriteBatch(true);
    try {
      queueWrites(
        new TransactionWriters(this.connection, this.eventStatements, batch.enqueue, this.coldStorage),
      );
    } catch (error) {
      batch.seal();
      throw error;
    }
    if (batch.writes.length === 0) {
      batch.seal();
      return;
    }
    return this.writeQueue.submit(batch);
  }

  get commits(): number {
    return this.writeQueue.commits;
  }

  async integrityCheck(): Promise<string[]> {
    if (this.closed) throw closedError();
    return this.connection.sqlite
      .prepare<[], { integrity_check: string }>('PRAGMA integrity_check')
      .all()
      .map((row) => row.integrity_check);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Notification rows and read marks kept in memory for a batched write (push-store.ts) go with this last commit.
    const notifications = this.push.writeUnwritten();
    this.closed = true;
    this.writeQueue.flush();
    await notifications.catch(() => {});
    await this.checkpointer?.stop();
    this.connection.sqlite.close();
  }
}

function closedError(): StorageError {
  return new StorageError('CLOSED', 'storage is closed');
}
