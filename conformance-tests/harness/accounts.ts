/**
 * Accounts and rooms for black-box tests: an account made directly in
 * storage (with a real password hash) and logged in through the real
 * /login; a JSON client bound to one access token; and, until rooms exist
 * (issue #4), a fixture that writes room membership straight into the
 * current state, as the room service will.
 */
import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import type { MyelinConfig } from '../../server/config/index.js';
import type { TestHomeserver } from './test-homeserver.js';

export interface TestUser {
  readonly userId: string;
  readonly password: string;
  readonly accessToken: string;
  readonly deviceId: string;
}

export interface JsonResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** Fast hashing and no rate limits: what most account tests want. */
export function fastAccounts(config: MyelinConfig): void {
  config.password_hashing.scrypt_log_n = 10;
  config.rate_limits.enabled = false;
}

export async function createAccount(
  hs: TestHomeserver,
  localpart: string,
  options: { password?: string; displayName?: string; isGuest?: boolean } = {},
): Promise<string> {
  const context = hs.homeserver.context;
  const userId = `@${localpart}:${hs.config.server_name}`;
  await context.storage.accounts.createAccount({
    userId,
    passwordHash: await context.passwords.hash(options.password ?? `${localpart} password`),
    createdTs: Date.now(),
    ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
    ...(options.isGuest !== undefined ? { isGuest: options.isGuest } : {}),
  });
  return userId;
}

export async function login(
  hs: TestHomeserver,
  userId: string,
  password: string,
  extra: Record<string, unknown> = {},
): Promise<TestUser> {
  const res = await hs.fetch('/_matrix/client/v3/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password,
      ...extra,
    }),
  });
  expect(res.status, await res.clone().text()).to.equal(200);
  const body = (await res.json()) as { user_id: string; access_token: string; device_id: string };
  return { userId: body.user_id, password, accessToken: body.access_token, deviceId: body.device_id };
}

/** A new account, logged in once. */
export async function createUser(
  hs: TestHomeserver,
  localpart: string,
  options: { displayName?: string; isGuest?: boolean } = {},
): Promise<TestUser> {
  const password = `${localpart} password`;
  const userId = await createAccount(hs, localpart, { ...options, password });
  return login(hs, userId, password);
}

/** Sends JSON with the user's token (or none) and reads the JSON answer. */
export async function call(
  hs: TestHomeserver,
  user: Pick<TestUser, 'accessToken'> | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonResponse> {
  const res = await hs.fetch(path, {
    method,
    headers: {
      ...(user ? { Authorization: `Bearer ${user.accessToken}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

let fixtureCounter = 0;

/**
 * Test-only: makes `userId`'s membership in `roomId` what it says, by storing
 * an m.room.member event and pointing the room's current state at it (no
 * auth rules, hashes or signatures: the room service of #4 does those).
 */
export async function setMembershipFixture(
  hs: TestHomeserver,
  roomId: string,
  userId: string,
  membership: 'join' | 'leave' | 'invite',
): Promise<void> {
  await storeStateFixture(hs, roomId, 'm.room.member', userId, userId, { membership });
}

/** Test-only: sets the room's join rule (`public` makes its members visible in the user directory). */
export async function setJoinRuleFixture(
  hs: TestHomeserver,
  roomId: string,
  joinRule: 'public' | 'invite',
): Promise<void> {
  await storeStateFixture(hs, roomId, 'm.room.join_rules', '', `@creator:${hs.config.server_name}`, {
    join_rule: joinRule,
  });
}

async function storeStateFixture(
  hs: TestHomeserver,
  roomId: string,
  type: string,
  stateKey: string,
  sender: string,
  content: Record<string, string>,
): Promise<void> {
  fixtureCounter += 1;
  const eventId = `$fixture-${fixtureCounter}-${Math.random().toString(36).slice(2, 10)}`;
  await hs.homeserver.context.storage.events.persistEvent({
    event: {
      eventId,
      roomId,
      pdu: {
        type,
        room_id: roomId,
        sender,
        state_key: stateKey,
        origin_server_ts: Date.now(),
        content,
        depth: fixtureCounter,
        prev_events: [],
        auth_events: [],
        hashes: { sha256: 'aGFzaA' },
        signatures: {},
      },
    },
    outlier: false,
    updateForwardExtremities: false,
    currentStateDelta: { set: new Map([[stateTupleKey(type, stateKey), eventId]]) },
  });
}
