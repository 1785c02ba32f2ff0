import { describeAccountDataStoreContract } from './account-data-store.contract.js';
import { describeAccountStoreContract } from './account-store.contract.js';
import { describeContentReportStoreContract } from './content-report-store.contract.js';
import type { StorageFactory } from './contract-harness.js';
import { describeDeviceStoreContract } from './device-store.contract.js';
import { describeE2eKeyStoreContract } from './e2e-key-store.contract.js';
import { describeEventStoreContract } from './event-store.contract.js';
import { describeEventStoreRoomsContract } from './event-store-rooms.contract.js';
import { describeFederationStoreContract } from './federation-store.contract.js';
import { describeFilterStoreContract } from './filter-store.contract.js';
import { describeKeyBackupStoreContract } from './key-backup-store.contract.js';
import { describeLoginTokenStoreContract } from './login-token-store.contract.js';
import { describeMediaStoreContract } from './media-store.contract.js';
import { describeMembershipStoreContract } from './membership-store.contract.js';
import { describePresenceStoreContract } from './presence-store.contract.js';
import { describePushStoreContract } from './push-store.contract.js';
import { describeReceiptStoreContract } from './receipt-store.contract.js';
import { describeRegistrationTokenStoreContract } from './registration-token-store.contract.js';
import { describeRelationStoreContract } from './relation-store.contract.js';
import { describeRoomStoreContract } from './room-store.contract.js';
import { describeSessionStoreContract } from './session-store.contract.js';
import { describeStateStoreContract } from './state-store.contract.js';
import { describeToDeviceStoreContract } from './to-device-store.contract.js';
import { describeTransactionContract } from './transaction.contract.js';
import { describeTransactionIdStoreContract } from './transaction-id-store.contract.js';
import { describeUiaSessionStoreContract } from './uia-session-store.contract.js';

export type { StorageFactory } from './contract-harness.js';

/**
 * The behaviour every storage backend must show. Run it once per backend:
 * `describeStorageContract('SQLite', () => openSqliteStorage({ path: ':memory:' }))`.
 */
export function describeStorageContract(name: string, makeStorage: StorageFactory): void {
  describe(`storage contract: ${name}`, () => {
    describeEventStoreContract(makeStorage);
    describeStateStoreContract(makeStorage);
    describeAccountStoreContract(makeStorage);
    describeDeviceStoreContract(makeStorage);
    describeSessionStoreContract(makeStorage);
    describeTransactionIdStoreContract(makeStorage);
    describeAccountDataStoreContract(makeStorage);
    describeTransactionContract(makeStorage);
    describeRegistrationTokenStoreContract(makeStorage);
    describeLoginTokenStoreContract(makeStorage);
    describePresenceStoreContract(makeStorage);
    describeUiaSessionStoreContract(makeStorage);
    describeEventStoreRoomsContract(makeStorage);
    describeRoomStoreContract(makeStorage);
    describeMembershipStoreContract(makeStorage);
    describeReceiptStoreContract(makeStorage);
    describeRelationStoreContract(makeStorage);
    describeFilterStoreContract(makeStorage);
    describeToDeviceStoreContract(makeStorage);
    describeKeyBackupStoreContract(makeStorage);
    describeE2eKeyStoreContract(makeStorage);
    describeMediaStoreContract(makeStorage);
    describePushStoreContract(makeStorage);
    describeContentReportStoreContract(makeStorage);
    describeFederationStoreContract(makeStorage);
  });
}
