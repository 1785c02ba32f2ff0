import { expect } from 'chai';
import { StorageError, type StorageErrorCode } from '../errors.js';
import type { Storage } from '../storage.js';

/** Makes a fresh, empty storage; the contract closes it after each test. */
export type StorageFactory = () => Promise<Storage>;

/** Gives each test of the enclosing `describe` a fresh storage and closes it afterwards. */
export function useFreshStorage(makeStorage: StorageFactory): () => Storage {
  let storage: Storage | undefined;
  beforeEach(async () => {
    storage = await makeStorage();
  });
  afterEach(async () => {
    await storage?.close();
    storage = undefined;
  });
  return () => {
    if (!storage) throw new Error('storage is only available inside a test');
    return storage;
  };
}

export async function expectStorageError(
  promise: Promise<unknown>,
  code: StorageErrorCode,
): Promise<StorageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(StorageError);
    expect((error as StorageError).code).to.equal(code);
    return error as StorageError;
  }
  expect.fail(`expected StorageError ${code}, but the promise resolved`);
}
