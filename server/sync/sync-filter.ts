/**
 * The `filter` parameter of /sync (client-server "Filtering"): a filter ID from
 * POST /user/{userId}/filter, or a Filter as inline JSON when it starts with `{`.
 * Stored filters never change, so parsed ones are cached per (user, ID).
 */

import { Value } from '@sinclair/typebox/value';
import type { FilterStore } from '../../storage/filter-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import { PairKeys } from '../../storage/pair-keys.js';
import { MatrixError } from '../errors.js';
import {
  type EventFilter,
  type Filter,
  FilterSchema,
  parseFilterJson,
  type RoomEventFilter,
} from '../rooms/event-filter.js';

/** client-server "Syncing": servers apply a default timeline limit; 10 is the usual one. */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** Upper bound on a timeline a client may ask for in one sync. */
export const MAX_TIMELINE_LIMIT = 1000;

/** A filter in the shape sync reads it. */
export interface SyncFilter {
  readonly eventFields: readonly string[] | undefined;
  readonly eventFormat: 'client' | 'federation';
  readonly presence: EventFilter | undefined;
  readonly accountData: EventFilter | undefined;
  readonly rooms: readonly string[] | undefined;
  readonly notRooms: readonly string[] | undefined;
  readonly includeLeave: boolean;
  /** Myelin extension (spec/archiving.md): rooms the user archived are kept, left out, or the only ones. */
  readonly archived: 'include' | 'exclude' | 'only';
  readonly timeline: RoomEventFilter | undefined;
  readonly timelineLimit: number;
  readonly state: RoomEventFilter | undefined;
  readonly ephemeral: RoomEventFilter | undefined;
  readonly roomAccountData: RoomEventFilter | undefined;
  /** From the state filter (client-server "Lazy-loading room members"). */
  readonly lazyLoadMembers: boolean;
  readonly includeRedundantMembers: boolean;
}

export function syncFilterOf(filter: Filter): SyncFilter {
  const room = filter.room;
  const limit = room?.timeline?.limit;
  return {
    eventFields: filter.event_fields,
    eventFormat: filter.event_format ?? 'client',
    presence: filter.presence,
    accountData: filter.account_data,
    rooms: room?.rooms,
    notRooms: room?.not_rooms,
    includeLeave: room?.include_leave === true,
    archived: room?.['io.myelin.archived'] ?? 'include',
    timeline: room?.timeline,
    timelineLimit: Math.min(limit ?? DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT),
    state: room?.state,
    ephemeral: room?.ephemeral,
    roomAccountData: room?.account_data,
    lazyLoadMembers: room?.state?.lazy_load_members === true,
    includeRedundantMembers: room?.state?.include_redundant_members === true,
  };
}

export const NO_FILTER: SyncFilter = syncFilterOf({});

export class SyncFilterResolver {
  private readonly stored = new LazyLruCache<string, SyncFilter>({ max: 10_000 });
  /** `${userId}\u0000${filterId}`, made once (every round of a woken sync looks its filter up). */
  private readonly keys = new PairKeys('\u0000', { firsts: 10_000, secondsEach: 100 });

  constructor(private readonly filters: FilterStore) {}

  /**
   * The filter when that needs no read (none, or a stored one already parsed), without a
   * promise: every round of a woken sync resolves its filter again. Undefined otherwise.
   */
  cached(userId: string, filterParam: string | undefined): SyncFilter | undefined {
    if (filterParam === undefined || filterParam === '') return NO_FILTER;
    if (filterParam.trimStart().startsWith('{')) return undefined;
    return this.stored.get(this.keys.of(userId, filterParam));
  }

  /** @throws MatrixError 400 (M_NOT_JSON, M_BAD_JSON, M_INVALID_PARAM for an unknown filter ID). */
  async resolve(userId: string, filterParam: string | undefined): Promise<SyncFilter> {
    if (filterParam === undefined || filterParam === '') return NO_FILTER;
    if (filterParam.trimStart().startsWith('{')) return syncFilterOf(parseFilterJson(filterParam));
    const key = this.keys.of(userId, filterParam);
    const cached = this.stored.get(key);
    if (cached !== undefined) return cached;
    const stored = await this.filters.getFilter(userId, filterParam);
    // Synapse answers an unknown filter ID with 400 M_INVALID_PARAM, which clients expect.
    if (stored === null) throw MatrixError.invalidParam('No such filter');
    if (!Value.Check(FilterSchema, stored)) throw MatrixError.invalidParam('The stored filter is not valid');
    const filter = syncFilterOf(stored);
    this.stored.set(key, filter);
    return filter;
  }
}
