/**
 * Sliding sync extensions (MSC3885 to_device, MSC3884 e2ee, MSC3959 account_data,
 * MSC3960 receipts, MSC3961 typing, as Synapse serves them). Each reads from the
 * position of the connection's previous response; a room that the lists or
 * subscriptions did not match then (or the whole connection, when new) is sent
 * afresh: all its receipts, room account data and current typing. The room-scoped
 * ones report only on the rooms their `lists` and `rooms` name (`*`: all).
 */
import type { JsonObject } from '../../protocol/events.js';
import { RECEIPT_DELIVERED } from '../rooms/receipts.js';
import type { ConnectionGeneration, ExtensionPositions } from './connections.js';
import type { ExtensionScope, ExtensionsRequest } from './request.js';
import type { SlidingSyncContext } from './sliding-sync-context.js';

export interface ExtensionInput {
  readonly request: ExtensionsRequest;
  readonly base: ConnectionGeneration | null;
  /** The rooms in each list's ranges. */
  readonly listRooms: ReadonlyMap<string, readonly string[]>;
  /** Subscribed rooms the user may see. */
  readonly subscribedRooms: readonly string[];
  readonly joinedRooms: ReadonlySet<string>;
}

export interface ExtensionsOutcome {
  readonly body: JsonObject;
  /** Something the client has not had: the response may not wait. */
  readonly hasNews: boolean;
  readonly positions: ExtensionPositions;
  /** To-device messages are in the body (sent again until the client's `since` passes them). */
  readonly toDeviceSent: boolean;
}

export async function buildExtensions(
  ctx: SlidingSyncContext,
  input: ExtensionInput,
): Promise<ExtensionsOutcome> {
  const { request } = input;
  const body: JsonObject = {};
  let hasNews = false;
  let toDeviceSent = false;
  const tasks: Promise<void>[] = [];
  if (request.toDevice !== undefined) {
    const toDevice = request.toDevice;
    tasks.push(
      toDeviceExtension(ctx, toDevice).then((result) => {
        body.to_device = result;
        if ((result.events as unknown[]).length > 0) {
          hasNews = true;
          toDeviceSent = true;
        }
      }),
    );
  }
  if (request.e2ee !== undefined) {
    tasks.push(
      e2eeExtension(ctx, input.base).then((result) => {
        body.e2ee = result.body;
        hasNews ||= result.hasNews;
      }),
    );
  }
  if (request.accountData !== undefined) {
    const rooms = scopedRooms(input, request.accountData);
    tasks.push(
      accountDataExtension(ctx, input, rooms).then((result) => {
        body.account_data = result.body;
        hasNews ||= result.hasNews;
      }),
    );
  }
  if (request.receipts !== undefined) {
    const rooms = scopedRooms(input, request.receipts).filter((roomId) => input.joinedRooms.has(roomId));
    tasks.push(
      receiptsExtension(ctx, input, rooms).then((rooms) => {
        body.receipts = { rooms };
        if (Object.keys(rooms).length > 0) hasNews = true;
      }),
    );
  }
  if (request.typing !== undefined) {
    const rooms = scopedRooms(input, request.typing).filter((roomId) => input.joinedRooms.has(roomId));
    const typing = typingExtension(ctx, input, rooms);
    body.typing = { rooms: typing };
    if (Object.keys(typing).length > 0) hasNews = true;
  }
  await Promise.all(tasks);
  return {
    body,
    hasNews,
    toDeviceSent,
    positions: {
      accountData: ctx.upTo.accountData,
      receipts: ctx.upTo.receipts,
      typing: ctx.upTo.typing,
      deviceLists: ctx.upTo.deviceLists,
    },
  };
}

/** Rooms of the named lists and subscriptions (Synapse find_relevant_room_ids_for_extension). */
function scopedRooms(input: ExtensionInput, scope: ExtensionScope): string[] {
  const rooms = new Set<string>();
  for (const name of scope.lists) {
    if (name === '*') {
      for (const ids of input.listRooms.values()) for (const id of ids) rooms.add(id);
      break;
    }
    for (const id of input.listRooms.get(name) ?? []) rooms.add(id);
  }
  const subscribed = new Set(input.subscribedRooms);
  for (const roomId of scope.rooms) {
    if (roomId === '*') {
      for (const id of subscribed) rooms.add(id);
      break;
    }
    if (subscribed.has(roomId)) rooms.add(roomId);
  }
  return [...rooms];
}

/** Whether the extension must send the room afresh: the previous response did not cover it. */
function isFresh(input: ExtensionInput, roomId: string): boolean {
  return input.base === null || !input.base.matched.has(roomId);
}

/**
 * `since` is the next_batch the client last processed: the messages up to it are
 * delivered and deleted, then the next ones are handed out (as /sync does).
 */
async function toDeviceExtension(
  ctx: SlidingSyncContext,
  request: NonNullable<ExtensionsRequest['toDevice']>,
): Promise<JsonObject> {
  const { userId, deviceId, upTo } = ctx;
  if (deviceId === null) return { next_batch: String(upTo.toDevice), events: [] };
  const since = Math.min(request.since, upTo.toDevice);
  await ctx.hs.toDevice.acknowledge(userId, deviceId, since);
  const pending = await ctx.hs.toDevice.pending(userId, deviceId, since, upTo.toDevice, request.limit);
  return { next_batch: String(pending.position), events: pending.events };
}

async function e2eeExtension(
  ctx: SlidingSyncContext,
  base: ConnectionGeneration | null,
): Promise<{ body: JsonObject; hasNews: boolean }> {
  const { deviceKeys } = ctx.hs;
  const { userId, deviceId, upTo } = ctx;
  const [deviceLists, oneTimeKeyCounts, fallbackKeyTypes] = await Promise.all([
    base === null
      ? { changed: [], left: [] }
      : deviceKeys.deviceListChanges(userId, base.extensions.deviceLists, upTo.deviceLists),
    deviceId === null ? { signed_curve25519: 0 } : deviceKeys.oneTimeKeyCounts(userId, deviceId),
    deviceId === null ? [] : deviceKeys.unusedFallbackKeyTypes(userId, deviceId),
  ]);
  return {
    body: {
      device_lists: { changed: deviceLists.changed, left: deviceLists.left },
      device_one_time_keys_count: oneTimeKeyCounts,
      device_unused_fallback_key_types: fallbackKeyTypes,
    },
    hasNews: deviceLists.changed.length > 0 || deviceLists.left.length > 0,
  };
}

async function accountDataExtension(
  ctx: SlidingSyncContext,
  input: ExtensionInput,
  roomIds: readonly string[],
): Promise<{ body: JsonObject; hasNews: boolean }> {
  const { accountData } = ctx.hs.storage;
  const { userId, upTo } = ctx;
  const global: JsonObject[] = [];
  const rooms: Record<string, JsonObject[]> = {};
  const add = (roomId: string, event: JsonObject) => {
    rooms[roomId] ??= [];
    rooms[roomId].push(event);
  };
  const wanted = new Set(roomIds);
  const fresh = roomIds.filter((roomId) => isFresh(input, roomId));
  const freshSet = new Set(fresh);

  const base = input.base;
  const changed =
    base === null || base.extensions.accountData >= upTo.accountData
      ? []
      : await accountData.accountDataChangedSince(userId, base.extensions.accountData);
  for (const entry of changed) {
    if (entry.streamPosition > upTo.accountData) continue;
    const event = { type: entry.type, content: entry.content };
    if (entry.roomId === null) global.push(event);
    else if (wanted.has(entry.roomId) && !freshSet.has(entry.roomId)) add(entry.roomId, event);
  }
  if (base === null)
    for (const entry of await accountData.globalAccountData(userId))
      global.push({ type: entry.type, content: entry.content });
  const freshEntries = await Promise.all(fresh.map((roomId) => accountData.roomAccountData(userId, roomId)));
  for (const [i, entries] of freshEntries.entries())
    for (const entry of entries) add(fresh[i]!, { type: entry.type, content: entry.content });

  return {
    body: { global, rooms },
    hasNews:
      (base !== null && global.length > 0) || Object.keys(rooms).some((roomId) => !freshSet.has(roomId)),
  };
}

async function receiptsExtension(
  ctx: SlidingSyncContext,
  input: ExtensionInput,
  roomIds: readonly string[],
): Promise<Record<string, JsonObject>> {
  const { receipts } = ctx.hs;
  const { userId, upTo } = ctx;
  const fresh = roomIds.filter((roomId) => isFresh(input, roomId));
  const known = roomIds.filter((roomId) => !isFresh(input, roomId));
  const [freshContent, knownContent] = await Promise.all([
    receipts.receiptContentForRooms(userId, fresh, null, upTo.receipts),
    input.base === null
      ? new Map<string, JsonObject>()
      : receipts.receiptContentForRooms(userId, known, input.base.extensions.receipts, upTo.receipts),
  ]);
  const rooms: Record<string, JsonObject> = {};
  for (const [roomId, content] of [...freshContent, ...knownContent]) {
    const shown = withoutOwnDeliveries(content, userId);
    if (shown !== null) rooms[roomId] = { type: 'm.receipt', content: shown };
  }
  return rooms;
}

function typingExtension(
  ctx: SlidingSyncContext,
  input: ExtensionInput,
  roomIds: readonly string[],
): Record<string, JsonObject> {
  const { typing } = ctx.hs;
  const changed =
    input.base === null || input.base.extensions.typing >= ctx.upTo.typing
      ? new Set<string>()
      : typing.changedRoomsSince(input.base.extensions.typing);
  const rooms: Record<string, JsonObject> = {};
  for (const roomId of roomIds) {
    const userIds = typing.typingUsers(roomId);
    if (isFresh(input, roomId) ? userIds.length > 0 : changed.has(roomId))
      rooms[roomId] = { type: 'm.typing', content: { user_ids: userIds } };
  }
  return rooms;
}

/** A user's own delivery receipts tell them nothing (they are for the senders): left out. */
function withoutOwnDeliveries(content: JsonObject, userId: string): JsonObject | null {
  let shown: JsonObject | null = null;
  for (const [eventId, byType] of Object.entries(content)) {
    let kept = byType as JsonObject;
    const delivered = kept[RECEIPT_DELIVERED] as JsonObject | undefined;
    if (delivered?.[userId] !== undefined) {
      const others: JsonObject = { ...delivered };
      delete others[userId];
      kept = { ...kept };
      if (Object.keys(others).length > 0) kept[RECEIPT_DELIVERED] = others;
      else delete kept[RECEIPT_DELIVERED];
    }
    if (Object.keys(kept).length > 0) {
      shown ??= {};
      shown[eventId] = kept;
    }
  }
  return shown;
}
