import type { JsonObject } from '../protocol/events.js';

export type AccountDataStreamPosition = number;

export interface AccountDataEntry {
  readonly userId: string;
  /** Null for global account data. */
  readonly roomId: string | null;
  readonly type: string;
  readonly content: JsonObject;
  readonly streamPosition: AccountDataStreamPosition;
}

export interface AccountDataReader {
  getAccountData(userId: string, roomId: string | null, type: string): Promise<AccountDataEntry | null>;
  globalAccountData(userId: string): Promise<AccountDataEntry[]>;
  roomAccountData(userId: string, roomId: string): Promise<AccountDataEntry[]>;
  /** Entries of the user changed after `afterPosition` (global and per room), oldest change first. */
  accountDataChangedSince(
    userId: string,
    afterPosition: AccountDataStreamPosition,
  ): Promise<AccountDataEntry[]>;
  latestAccountDataPosition(): Promise<AccountDataStreamPosition>;
}

export interface AccountDataWriter {
  /** Inserts or replaces the entry; resolves to its new stream position. */
  putAccountData(
    userId: string,
    roomId: string | null,
    type: string,
    content: JsonObject,
  ): Promise<AccountDataStreamPosition>;
}

export interface AccountDataStore extends AccountDataReader, AccountDataWriter {}
