export type * from './account-data-store.js';
export type * from './account-store.js';
export type * from './device-store.js';
export type * from './e2e-key-store.js';
export { isStorageError, StorageError, type StorageErrorCode } from './errors.js';
export type * from './event-store.js';
export type * from './filter-store.js';
export type * from './key-backup-store.js';
export type * from './login-token-store.js';
export type * from './media-store.js';
export type * from './membership-store.js';
export {
  type AppliedMigration,
  type Migration,
  type MigrationReport,
  type MigrationTarget,
  migrationChecksum,
  runMigrations,
} from './migrations.js';
export type * from './presence-store.js';
export type * from './push-store.js';
export * from './receipt-store.js';
export type * from './registration-token-store.js';
export type * from './relation-store.js';
export type * from './room-store.js';
export * from './search-index.js';
export * from './search-text.js';
export type * from './session-store.js';
export { openSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';
export type * from './state-store.js';
export type * from './storage.js';
export * from './to-device-store.js';
export type * from './transaction-id-store.js';
export type * from './uia-session-store.js';
