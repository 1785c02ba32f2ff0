import type { AccountDataStore, AccountDataWriter } from './account-data-store.js';
import type { AccountStore, AccountWriter } from './account-store.js';
import type { AppserviceStore } from './appservice-store.js';
import type { ColdStorage } from './cold-storage.js';
import type { ContentReportStore } from './content-report-store.js';
import type { DeviceStore, DeviceWriter } from './device-store.js';
import type { E2eKeyStore } from './e2e-key-store.js';
import type { EventStore, EventWriter } from './event-store.js';
import type { FederationStore } from './federation-store.js';
import type { FilterStore } from './filter-store.js';
import type { KeyBackupStore } from './key-backup-store.js';
import type { LoginTokenStore } from './login-token-store.js';
import type { MediaStore } from './media-store.js';
import type { MembershipStore } from './membership-store.js';
import type { PresenceStore } from './presence-store.js';
import type { PushStore } from './push-store.js';
import type { ReceiptStore } from './receipt-store.js';
import type { RegistrationTokenStore } from './registration-token-store.js';
import type { RelationStore } from './relation-store.js';
import type { RoomStore, RoomWriter } from './room-store.js';
import type { SearchIndex } from './search-index.js';
import type { SessionStore, SessionWriter } from './session-store.js';
import type { StateStore, StateWriter } from './state-store.js';
import type { ToDeviceStore } from './to-device-store.js';
import type { TransactionIdStore, TransactionIdWriter } from './transaction-id-store.js';
import type { UiaSessionStore } from './uia-session-store.js';

/**
 * The writers of every store, bound to one transaction. Each call queues a
 * write and returns a promise that settles once the whole transaction has
 * committed (or rejects with the error that rolled it back).
 */
export interface WriteTransaction {
  readonly events: EventWriter;
  readonly state: StateWriter;
  readonly accounts: AccountWriter;
  readonly devices: DeviceWriter;
  readonly sessions: SessionWriter;
  readonly transactionIds: TransactionIdWriter;
  readonly accountData: AccountDataWriter;
  readonly rooms: RoomWriter;
}

export interface Storage {
  readonly events: EventStore;
  readonly state: StateStore;
  readonly accounts: AccountStore;
  readonly devices: DeviceStore;
  readonly sessions: SessionStore;
  readonly transactionIds: TransactionIdStore;
  readonly accountData: AccountDataStore;
  // Stores whose writes stand alone (no need to share a transaction with the stores above).
  readonly registrationTokens: RegistrationTokenStore;
  readonly loginTokens: LoginTokenStore;
  readonly presence: PresenceStore;
  readonly uiaSessions: UiaSessionStore;
  readonly rooms: RoomStore;
  /** Derived from current state by persistEvent; read-only but for forgetRoom. */
  readonly memberships: MembershipStore;
  readonly receipts: ReceiptStore;
  /** Derived from events by persistEvent (and applyRedaction); read-only. */
  readonly relations: RelationStore;
  readonly filters: FilterStore;
  /** End-to-end encryption keys of local devices and users, and the device-list stream. */
  readonly e2eKeys: E2eKeyStore;
  /** Send-to-device inboxes of local devices, on the 'to_device' stream. */
  readonly toDevice: ToDeviceStore;
  /** Server-side backups of room keys. */
  readonly keyBackups: KeyBackupStore;
  /** The content repository's media IDs, blobs and thumbnails. */
  readonly media: MediaStore;
  /** The embedded full-text index of room events (the default /search backend). */
  readonly search: SearchIndex;
  /** Old history moved to compressed segments (retention); EventStore reads include it. */
  readonly coldStorage: ColdStorage;
  /** Push rules, pushers, notifications and read marks (issue #8). */
  readonly push: PushStore;
  readonly contentReports: ContentReportStore;
  /** Federation transport: remote keys, the outbound queue, inbound transaction IDs. */
  readonly federation: FederationStore;
  /** Application services: the event stream handed out and each service's transaction queue. */
  readonly appservices: AppserviceStore;

  /**
   * Groups writes of several stores into one atomic transaction. `queueWrites`
   * must be synchronous: it only queues writes (read what you need before),
   * and it must not await the promises the writers return; await them, or the
   * promise `transaction` returns, afterwards. If any write fails, none is kept
   * and every promise rejects with that error.
   */
  transaction(queueWrites: (tx: WriteTransaction) => void): Promise<void>;

  /** Finishes queued writes, then releases the database. Later calls reject with CLOSED. */
  close(): Promise<void>;
}
