/**
 * Remote servers' signing keys (server-server "Retrieving server keys"):
 * this server's own keys answer at once; others come from the cache
 * (storage), else from the server itself (GET /_matrix/key/v2/server), else
 * from the trusted notaries (POST /_matrix/key/v2/query), each response
 * checked (self-signed, names the server, notary-signed when via a notary)
 * before it is kept.
 */

import type { Logger } from 'pino';
import type { JsonObject, Pdu } from '../protocol/events.js';
import {
  checkContentHash,
  type EventSignatureVerdict,
  type ReceivedEventCheck,
  requiredSignatories,
  type VerifyKey,
  verifyEventSignatures,
} from '../protocol/hashing.js';
import { redactEvent } from '../protocol/redaction.js';
import type { RoomVersionRules } from '../protocol/room-versions.js';
import { checkServerKeys, type OldVerifyKey, type PublishedKey } from '../protocol/server-keys.js';
import { type SigningKey, verifyJsonSignature } from '../protocol/signing.js';
import type { FederationStore } from '../storage/federation-store.js';
import { LazyLruCache } from '../storage/lazy-lru-cache.js';
import type { FederationClient, KeyRing, SignatureCheck } from './federation.js';

const MAX_KEY_VALIDITY_MS = 7 * 24 * 3600_000;
const KEY_MEMO_SIZE = 10_000;
/** After a fetch that did not find a valid key, do not ask again for this long. */
const FETCH_RETRY_AFTER_MS = 30_000;

export interface KeyRingOptions {
  readonly serverName: string;
  readonly signingKey: SigningKey;
  readonly oldKeys: readonly OldVerifyKey[];
  /** valid_until_ts of this server's own keys, computed when asked. */
  readonly ownValidUntilTs: () => number;
  readonly store: FederationStore;
  readonly client: FederationClient;
  readonly trustedKeyServers: readonly string[];
  readonly log: Logger;
  readonly now?: () => number;
}

export function createKeyRing(options: KeyRingOptions): KeyRing & {
  /** Fetches (or reads from cache) a server's keys; notary use. Undefined when none could be had. */
  keyResponseFor(serverName: string, minimumValidUntilTs: number): Promise<JsonObject | undefined>;
} {
  const now = options.now ?? Date.now;
  const { store, client, log } = options;
  const inFlight = new Map<string, Promise<void>>();
  /** Keys read or fetched, in memory: checking a busy room's PDUs must not read the database per signature. */
  const memo = new LazyLruCache<string, PublishedKey>({ max: KEY_MEMO_SIZE });
  const storedKey = async (serverName: string, keyId: string): Promise<PublishedKey | null> => {
    const memoKey = `${serverName} ${keyId}`;
    const cached = memo.get(memoKey);
    if (cached) return cached;
    const stored = await store.getServerKey(serverName, keyId);
    if (stored) memo.set(memoKey, stored);
    return stored;
  };
  /** `${server} ${keyId}` -> when a fetch last failed to produce a usable key. */
  const lastMiss = new Map<string, number>();

  const ownKey = (keyId: string): PublishedKey | undefined => {
    if (keyId === options.signingKey.keyId) {
      return {
        serverName: options.serverName,
        keyId,
        publicKey: options.signingKey.publicKey,
        validUntilTs: options.ownValidUntilTs(),
        expired: false,
      };
    }
    const old = options.oldKeys.find((key) => key.keyId === keyId);
    return old
      ? {
          serverName: options.serverName,
          keyId,
          publicKey: old.publicKey,
          validUntilTs: old.expiredTs,
          expired: true,
        }
      : undefined;
  };

  const usable = (key: PublishedKey | null | undefined, atTs: number, enforce: boolean) =>
    key !== null && key !== undefined && (!enforce || key.validUntilTs >= atTs);

  /** Keeps a checked key response; `viaNotary` adds the notary signature check. */
  const keep = async (serverName: string, response: unknown, viaNotary?: string): Promise<boolean> => {
    const verdict = checkServerKeys(response, serverName);
    if (!verdict.ok) {
      log.warn({ serverName, viaNotary, reason: verdict.message }, 'Refused a key response');
      return false;
    }
    if (viaNotary !== undefined) {
      const notarised = await verifySignedByDirect(response as object, viaNotary);
      if (!notarised) {
        log.warn({ serverName, viaNotary }, 'Key response not signed by the notary');
        return false;
      }
    }
    // spec "Retrieving server keys": a key is not trusted more than 7 days ahead, whatever it claims.
    const horizon = now() + MAX_KEY_VALIDITY_MS;
    const keys = verdict.keys.map((key) =>
      key.expired || key.validUntilTs <= horizon ? key : { ...key, validUntilTs: horizon },
    );
    await store.putServerKeys(serverName, keys, response as JsonObject, now());
    for (const key of keys) memo.set(`${serverName} ${key.keyId}`, key);
    return true;
  };

  const fetchDirect = async (serverName: string): Promise<void> => {
    try {
      const response = await client.request({
        destination: serverName,
        method: 'GET',
        path: '/_matrix/key/v2/server',
        signed: false,
      });
      await keep(serverName, response);
    } catch (error) {
      log.info({ serverName, err: error }, 'Could not fetch server keys directly');
    }
  };

  const fetchViaNotaries = async (serverName: string, keyId: string, atTs: number): Promise<void> => {
    for (const notary of options.trustedKeyServers) {
      if (notary === serverName || notary === options.serverName) continue;
      try {
        const body = await client.request<{ server_keys?: unknown }>({
          destination: notary,
          method: 'POST',
          path: '/_matrix/key/v2/query',
          body: { server_keys: { [serverName]: { [keyId]: { minimum_valid_until_ts: atTs } } } },
        });
        const list = Array.isArray(body.server_keys) ? body.server_keys : [];
        for (const entry of list) {
          if ((entry as { server_name?: unknown }).server_name === serverName) {
            if (await keep(serverName, entry, notary)) return;
          }
        }
      } catch (error) {
        log.info({ serverName, notary, err: error }, 'Notary could not give server keys');
      }
    }
  };

  /** One fetch per server at a time; callers arriving meanwhile share it. */
  const fetchKeys = (serverName: string, keyId: string, atTs: number, direct: boolean): Promise<void> => {
    const flightKey = `${serverName} ${direct}`;
    let flight = inFlight.get(flightKey);
    if (!flight) {
      flight = (async () => {
        await fetchDirect(serverName);
        const found = await storedKey(serverName, keyId);
        if (!direct && !usable(found, atTs, true)) await fetchViaNotaries(serverName, keyId, atTs);
      })().finally(() => inFlight.delete(flightKey));
      inFlight.set(flightKey, flight);
    }
    return flight;
  };

  const lookup = async (
    serverName: string,
    keyId: string,
    atTs: number,
    enforce: boolean,
    direct = false,
  ): Promise<PublishedKey | undefined> => {
    if (serverName === options.serverName) {
      const own = ownKey(keyId);
      return usable(own, atTs, enforce) ? own : undefined;
    }
    const stored = await storedKey(serverName, keyId);
    if (usable(stored, atTs, enforce)) return stored!;
    const missKey = `${serverName} ${keyId}`;
    const missedAt = lastMiss.get(missKey);
    if (missedAt === undefined || now() - missedAt >= FETCH_RETRY_AFTER_MS) {
      await fetchKeys(serverName, keyId, atTs, direct);
      const fetched = await storedKey(serverName, keyId);
      if (usable(fetched, atTs, enforce)) {
        lastMiss.delete(missKey);
        return fetched!;
      }
      if (lastMiss.size > 10_000) lastMiss.clear();
      lastMiss.set(missKey, now());
    }
    return undefined;
  };

  /** A notary's signature, checked with the notary's own keys fetched from it directly. */
  const verifySignedByDirect = async (object: object, serverName: string): Promise<boolean> => {
    const check = await signedBy(object, serverName, now(), true, true);
    return check.ok;
  };

  const signedBy = async (
    object: object,
    serverName: string,
    atTs: number,
    enforce: boolean,
    direct = false,
  ): Promise<SignatureCheck> => {
    const signatures = (object as { signatures?: Record<string, Record<string, unknown>> }).signatures;
    const byServer = signatures?.[serverName];
    if (typeof byServer !== 'object' || byServer === null) {
      return { ok: false, reason: 'missing', message: `${serverName} has not signed` };
    }
    let sawKey = false;
    for (const keyId of Object.keys(byServer)) {
      if (!keyId.startsWith('ed25519:')) continue;
      const key = await lookup(serverName, keyId, atTs, enforce, direct);
      if (!key) continue;
      sawKey = true;
      if (verifyJsonSignature(object, serverName, keyId, key.publicKey).ok) return { ok: true };
    }
    return sawKey
      ? { ok: false, reason: 'bad', message: `The signature of ${serverName} does not match` }
      : { ok: false, reason: 'no_key', message: `No valid key of ${serverName} is known` };
  };

  const keysForEvent = async (pdu: Pdu, rules: RoomVersionRules): Promise<Map<string, VerifyKey>> => {
    const keys = new Map<string, VerifyKey>();
    let servers: string[] | undefined;
    try {
      servers = requiredSignatories(pdu, rules);
    } catch {
      return keys;
    }
    const signatures = (pdu as { signatures?: unknown }).signatures;
    if (!servers || typeof signatures !== 'object' || signatures === null) return keys;
    const atTs = typeof pdu.origin_server_ts === 'number' ? pdu.origin_server_ts : 0;
    await Promise.all(
      servers.flatMap((serverName) => {
        const byServer = (signatures as Record<string, unknown>)[serverName];
        if (typeof byServer !== 'object' || byServer === null) return [];
        return Object.keys(byServer)
          .filter((keyId) => keyId.startsWith('ed25519:'))
          .map(async (keyId) => {
            const key = await lookup(serverName, keyId, atTs, rules.enforceKeyValidity);
            if (key)
              keys.set(`${serverName} ${keyId}`, {
                publicKey: key.publicKey,
                validUntilTs: key.validUntilTs,
              });
          });
      }),
    );
    return keys;
  };

  const verifyEvent = async (pdu: Pdu, rules: RoomVersionRules): Promise<EventSignatureVerdict> => {
    const keys = await keysForEvent(pdu, rules);
    return verifyEventSignatures(pdu, rules, (serverName, keyId) => keys.get(`${serverName} ${keyId}`));
  };

  return {
    async verifyKeyFor(serverName, keyId, atTs, verifyOptions) {
      return (await lookup(serverName, keyId, atTs, verifyOptions?.enforceValidity ?? true))?.publicKey;
    },
    verifySignedBy(object, serverName, atTs, verifyOptions) {
      return signedBy(object, serverName, atTs, verifyOptions?.enforceValidity ?? true);
    },
    verifyEventSignatures: verifyEvent,
    async checkReceivedEvent(pdu, rules): Promise<ReceivedEventCheck> {
      const verdict = await verifyEvent(pdu, rules);
      if (!verdict.ok) return { outcome: 'reject', verdict };
      return checkContentHash(pdu, rules)
        ? { outcome: 'accept', pdu }
        : { outcome: 'redact', pdu: redactEvent(pdu, rules) };
    },
    async keyResponseFor(serverName, minimumValidUntilTs) {
      const cached = await store.getServerKeyResponse(serverName);
      if (cached && cached.validUntilTs >= minimumValidUntilTs) return cached.response;
      await fetchDirect(serverName);
      return (await store.getServerKeyResponse(serverName))?.response ?? cached?.response;
    },
  };
}
