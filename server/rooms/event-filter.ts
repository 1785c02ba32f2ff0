/**
 * Client filters (client-server "Filtering"; filter.yaml, definitions/sync_filter.yaml,
 * event_filter.yaml, room_event_filter.yaml): their schema, parsing of inline JSON
 * filters, and event matching. Used by /sync, /messages, /context and /user/{userId}/filter.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { JsonObject, JsonValue } from '../../protocol/events.js';
import { MatrixError } from '../errors.js';

const StringList = (description: string) => Type.Optional(Type.Array(Type.String(), { description }));

const eventFilterProperties = {
  limit: Type.Optional(Type.Integer({ minimum: 0, description: 'The maximum number of events to return.' })),
  types: StringList('Event types to include; `*` matches any sequence of characters.'),
  not_types: StringList('Event types to exclude; wins over `types`.'),
  senders: StringList('Senders to include.'),
  not_senders: StringList('Senders to exclude; wins over `senders`.'),
};

export const EventFilterSchema = Type.Object(eventFilterProperties, {
  additionalProperties: true,
  title: 'EventFilter',
});

export const RoomEventFilterSchema = Type.Object(
  {
    ...eventFilterProperties,
    rooms: StringList('Room IDs to include.'),
    not_rooms: StringList('Room IDs to exclude; wins over `rooms`.'),
    contains_url: Type.Optional(
      Type.Boolean({ description: 'true: only events with a `url` in content; false: only those without.' }),
    ),
    lazy_load_members: Type.Optional(Type.Boolean({ description: 'Lazy-load membership events.' })),
    include_redundant_members: Type.Optional(
      Type.Boolean({ description: 'With lazy loading, send membership events the client already has.' }),
    ),
    unread_thread_notifications: Type.Optional(
      Type.Boolean({ description: 'Per-thread notification counts in /sync.' }),
    ),
  },
  { additionalProperties: true, title: 'RoomEventFilter' },
);

export const RoomFilterSchema = Type.Object(
  {
    rooms: StringList('Room IDs to include (applied before the other room filters).'),
    not_rooms: StringList('Room IDs to exclude (applied before the other room filters).'),
    include_leave: Type.Optional(Type.Boolean({ description: 'Include rooms the user has left.' })),
    'io.myelin.archived': Type.Optional(
      Type.Union([Type.Literal('include'), Type.Literal('exclude'), Type.Literal('only')], {
        description:
          'Myelin extension (spec/archiving.md): `include` (default) the rooms the user archived, `exclude` them, or sync `only` them.',
      }),
    ),
    timeline: Type.Optional(RoomEventFilterSchema),
    state: Type.Optional(RoomEventFilterSchema),
    ephemeral: Type.Optional(RoomEventFilterSchema),
    account_data: Type.Optional(RoomEventFilterSchema),
  },
  { additionalProperties: true, title: 'RoomFilter' },
);

export const FilterSchema = Type.Object(
  {
    event_fields: StringList('Dot-separated paths of the event fields to include.'),
    event_format: Type.Optional(
      Type.Union([Type.Literal('client'), Type.Literal('federation')], {
        description: 'client (default) or federation.',
      }),
    ),
    presence: Type.Optional(EventFilterSchema),
    account_data: Type.Optional(EventFilterSchema),
    room: Type.Optional(RoomFilterSchema),
  },
  { additionalProperties: true, title: 'Filter' },
);

export type EventFilter = Static<typeof EventFilterSchema>;
export type RoomEventFilter = Static<typeof RoomEventFilterSchema>;
export type RoomFilter = Static<typeof RoomFilterSchema>;
export type Filter = Static<typeof FilterSchema>;

/** What a filter looks at in an event (a room event, account data, presence...). */
export interface FilterableEvent {
  readonly type: string;
  readonly sender?: string;
  readonly roomId?: string;
  readonly content?: JsonObject;
}

/** EventFilter: types / not_types (with `*` wildcards), senders / not_senders. */
export function matchesEventFilter(filter: EventFilter | undefined, event: FilterableEvent): boolean {
  if (filter === undefined) return true;
  if (filter.not_types?.some((pattern) => matchesTypePattern(pattern, event.type))) return false;
  if (filter.types !== undefined && !filter.types.some((pattern) => matchesTypePattern(pattern, event.type)))
    return false;
  if (event.sender !== undefined) {
    if (filter.not_senders?.includes(event.sender)) return false;
    if (filter.senders !== undefined && !filter.senders.includes(event.sender)) return false;
  }
  return true;
}

/** RoomEventFilter: the EventFilter fields, plus rooms / not_rooms and contains_url. */
export function matchesRoomEventFilter(filter: RoomEventFilter | undefined, event: FilterableEvent): boolean {
  if (filter === undefined) return true;
  if (!matchesEventFilter(filter, event)) return false;
  if (event.roomId !== undefined && !matchesRoomList(filter, event.roomId)) return false;
  if (filter.contains_url !== undefined) {
    const hasUrl = typeof event.content?.url === 'string';
    if (hasUrl !== filter.contains_url) return false;
  }
  return true;
}

/** rooms / not_rooms of a RoomFilter or RoomEventFilter; not_rooms wins. */
export function matchesRoomList(
  filter: { readonly rooms?: readonly string[]; readonly not_rooms?: readonly string[] } | undefined,
  roomId: string,
): boolean {
  if (filter === undefined) return true;
  if (filter.not_rooms?.includes(roomId)) return false;
  return filter.rooms === undefined || filter.rooms.includes(roomId);
}

/** Filter patterns: `*` stands for any sequence of characters, everything else is literal. */
export function matchesTypePattern(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const parts = pattern.split('*');
  const first = parts[0]!;
  const last = parts.at(-1)!;
  if (!type.startsWith(first) || type.length < first.length + last.length) return false;
  let at = first.length;
  for (const middle of parts.slice(1, -1)) {
    const found = type.indexOf(middle, at);
    if (found === -1) return false;
    at = found + middle.length;
  }
  return type.endsWith(last) && type.length - last.length >= at;
}

/** A Filter given as JSON text (the /sync `filter` parameter). @throws MatrixError 400 M_NOT_JSON / M_BAD_JSON */
export function parseFilterJson(text: string): Filter {
  const value = parseJsonObject(text);
  if (!Value.Check(FilterSchema, value)) throw MatrixError.badJson('Invalid filter');
  return value;
}

/** A RoomEventFilter given as JSON text (/messages and /context `filter`). @throws MatrixError 400 */
export function parseRoomEventFilterJson(text: string): RoomEventFilter {
  const value = parseJsonObject(text);
  if (!Value.Check(RoomEventFilterSchema, value)) throw MatrixError.badJson('Invalid filter');
  return value;
}

function parseJsonObject(text: string): JsonObject {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    throw MatrixError.notJson('The filter is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw MatrixError.badJson('The filter must be a JSON object');
  }
  return value;
}

/**
 * `event_fields` (appendices "Dot-separated property paths"): keeps only the listed
 * paths of a client event; `\.` escapes a dot inside a key and `\\` a backslash.
 */
export function selectEventFields(event: JsonObject, fields: readonly string[]): JsonObject {
  const selected: JsonObject = {};
  for (const field of fields) {
    const path = splitFieldPath(field);
    if (path.length === 0) continue;
    let from: JsonValue | undefined = event;
    for (const key of path) {
      from = from !== null && typeof from === 'object' && !Array.isArray(from) ? from[key] : undefined;
      if (from === undefined) break;
    }
    if (from === undefined) continue;
    let into = selected;
    for (const key of path.slice(0, -1)) {
      const next = into[key];
      if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) {
        const created: JsonObject = {};
        into[key] = created;
        into = created;
      } else into = next;
    }
    into[path.at(-1)!] = from;
  }
  return selected;
}

function splitFieldPath(field: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < field.length; i++) {
    const char = field[i]!;
    if (char === '\\' && (field[i + 1] === '.' || field[i + 1] === '\\')) {
      current += field[++i];
    } else if (char === '.') {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}
