import type { JsonObject } from '../../protocol/events.js';
import { PairKeys } from '../pair-keys.js';
import type {
  NewNotification,
  NotificationRecord,
  PusherRecord,
  PushStore,
  ReadMark,
  RoomUnreadCounts,
  UnreadCount,
} from '../push-store.js';
import type { SqliteConnection } from './connection.js';
import { parameterChunks } from './parameter-chunks.js';
import type { EnqueueWrite } from './write-queue.js';

/** An unthreaded read mark is stored under '' so that the primary key covers it. */
const UNTHREADED = '';

interface PusherRow {
  app_id: string;
  pushkey: string;
  user_id: string;
  device_id: string | null;
  kind: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string | null;
  lang: string;
  data: string;
  created_ts: number;
}

interface NotificationRow {
  user_id: string;
  room_id: string;
  stream_ordering: number;
  thread_id: string;
  actions: string;
  highlight: number;
}

const PUSHER_COLUMNS =
  'app_id, pushkey, user_id, device_id, kind, app_display_name, device_display_name, profile_tag, lang, data, created_ts';
const NOTIFICATION_COLUMNS =
  'user_name_id, room_name_id, stream_ordering, thread_id, actions_name_id, highlight';
/** Rows per multi-row INSERT (6 parameters each, well under SQLite's parameter limit). */
const ROWS_PER_INSERT = 50;
const NOTIFICATION_PARAMETERS = 6;

/**
 * A notification not yet written, without its user (its unwritten list's key names the user
 * and the room): the recipients of one event with the same outcome share one object, so the
 * rows held for up to UNWRITTEN_DELAY_MS (and promoted by the GC meanwhile) are a pointer per
 * recipient, not an object each.
 */
type UnwrittenRow = Omit<NotificationRow, 'user_id'>;

/**
 * A (user, room)'s unread counts as last read, kept current as notifications are added, so
 * that the 1,000 members woken by a message do not each count their rows again.
 */
interface CachedUnread {
  /** Handed to readers, never changed once handed out: undefined when the counts below moved since. */
  counts: RoomUnreadCounts | undefined;
  notificationCount: number;
  highlightCount: number;
  /** Per thread, changed in place as notifications are added. */
  readonly threads: Map<string, { notificationCount: number; highlightCount: number }>;
  /** The read marks the counts were made against (unthreaded under UNTHREADED). */
  readonly marks: ReadonlyMap<string, number>;
  /** The newest notification counted: a row at or below it may already be in the counts. */
  newest: number;
}

const UNREAD_CACHE_MAX = 100_000;

/**
 * Notification rows, and read marks moved by the users' own events, are kept in memory,
 * visible to every read, and written together a little later in large sorted batches: rows
 * are keyed by user, so one event's rows land on as many B-tree pages as it has recipients,
 * and a batch of many events touches each of those pages once instead of once per event
 * (measured: 1.0 ms of CPU per 100-row event alone, 0.41 ms at 10 events per write, 0.28 ms
 * at 50); a sender's mark moves with every send, and many moves make one write.
 * Sync then never waits for a commit to report a count. A crash loses at most the rows and
 * mark moves of the last UNWRITTEN_DELAY_MS; a clean close writes them all.
 */
const UNWRITTEN_DELAY_MS = 100;
/** Writing starts at once past this many unwritten rows. */
const UNWRITTEN_ROWS_MAX = 10_000;
/** Rows per write (each its own group commit, sorted by key): sends committing meanwhile wait little. */
const ROWS_PER_WRITE = 500;

const NO_UNREAD: RoomUnreadCounts = { notificationCount: 0, highlightCount: 0, threads: new Map() };

/** Names (push_names) kept in memory, at most; past it the map starts again from the table. */
const NAME_IDS_MAX = 200_000;

export class SqlitePushStore implements PushStore {
  private readonly statements;
  /** Bounded by dropping the oldest entry (insertion order) past UNREAD_CACHE_MAX. */
  private readonly unread = new Map<string, CachedUnread>();
  /** Notifications added and not yet written, per unreadKey (user, room), each list in stream order. */
  private readonly unwritten = new Map<string, UnwrittenRow[]>();
  private unwrittenRows = 0;
  private writeTimer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private closing = false;
  /**
   * Read marks moved by the users' own events and not yet written, per unreadKey (user,
   * room): thread (UNTHREADED for none) -> stream ordering. Every read merges them in;
   * they are written beside the next chunk of notification rows (writeAll), as a write of their own.
   */
  private readonly unwrittenMarks = new Map<string, Map<string, number>>();
  /**
   * unreadKey strings per user and room, made once: a message in a big room adds a row under
   * every member's key, and a string made anew each time is hashed anew for each map it meets.
   */
  private readonly keys = new PairKeys(UNREAD_KEY_SEPARATOR);
  /** push_names: name -> ID, of names read or written (only committed ones outside a write). */
  private nameIds = new Map<string, number>();

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {
    const db = connection.sqlite;
    this.statements = {
      getRules: db.prepare<[string], string>('SELECT rules FROM push_rules WHERE user_id = ?').pluck(),
      putRules: db.prepare<[string, string]>(
        'INSERT INTO push_rules (user_id, rules) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET rules = excluded.rules',
      ),
      pushersOfUser: db.prepare<[string], PusherRow>(
        `SELECT ${PUSHER_COLUMNS} FROM pushers WHERE user_id = ? ORDER BY created_ts, app_id, pushkey`,
      ),
      deleteOthersPushkey: db.prepare<[string, string, string]>(
        'DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?',
      ),
      upsertPusher: db.prepare<[PusherRow]>(
        `INSERT INTO pushers (${PUSHER_COLUMNS})
         VALUES (@app_id, @pushkey, @user_id, @device_id, @kind, @app_display_name, @device_display_name,
                 @profile_tag, @lang, @data, @created_ts)
         ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET
           device_id = excluded.device_id, kind = excluded.kind, app_display_name = excluded.app_display_name,
           device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag,
           lang = excluded.lang, data = excluded.data`,
      ),
      deletePusher: db.prepare<[string, string, string]>(
        'DELETE FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?',
      ),
      deletePushkey: db.prepare<[string, string]>('DELETE FROM pushers WHERE app_id = ? AND pushkey = ?'),
      insertNotification: db.prepare<unknown[]>(
        `INSERT OR REPLACE INTO push_notifications (${NOTIFICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      insertNotifications: db.prepare<unknown[]>(
        `INSERT OR REPLACE INTO push_notifications (${NOTIFICATION_COLUMNS}) VALUES ${Array.from(
          { length: ROWS_PER_INSERT },
          () => '(?, ?, ?, ?, ?, ?)',
        ).join(', ')}`,
      ),
      nameId: db.prepare<[string], number>('SELECT id FROM push_names WHERE name = ?').pluck(),
      addName: db.prepare<[string], number>('INSERT INTO push_names (name) VALUES (?) RETURNING id').pluck(),
      advanceMark: db.prepare<[string, string, string, number]>(
        `INSERT INTO push_read_marks (user_id, room_id, thread_id, stream_ordering) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET stream_ordering = excluded.stream_ordering
         WHERE excluded.stream_ordering > push_read_marks.stream_ordering`,
      ),
      marksOfRoom: db.prepare<[string, string], { thread_id: string; stream_ordering: number }>(
        'SELECT thread_id, stream_ordering FROM push_read_marks WHERE user_id = ? AND room_id = ?',
      ),
      // Counted in SQLite (materialising every unread row per sync grew with the unread count):
      // unread after the unthreaded mark and after the mark of its own thread (isUnread). The
      // marks are read first (marksOf: the table's merged with those not yet written); thread
      // marks come as a JSON object, or null when there are none (no lookup per row then).
      unreadInRoom: db.prepare<
        [number, number, number, string | null, string | null],
        { thread_id: string; notifications: number; highlights: number; newest: number }
      >(
        `SELECT n.thread_id, count(*) AS notifications, sum(n.highlight) AS highlights,
                max(n.stream_ordering) AS newest
           FROM push_notifications n
          WHERE n.user_name_id = ? AND n.room_name_id = ? AND n.stream_ordering > ?
            AND (? IS NULL
                 OR n.stream_ordering > coalesce((SELECT m.value FROM json_each(?) m WHERE m.key = n.thread_id), 0))
          GROUP BY n.thread_id`,
      ),
      writtenRow: db.prepare<[number, number, number], { thread_id: string; highlight: number }>(
        `SELECT thread_id, highlight FROM push_notifications
          WHERE user_name_id = ? AND room_name_id = ? AND stream_ordering = ?`,
      ),
      eventAt: db.prepare<[number], { event_id: string; origin_server_ts: number }>(
        'SELECT event_id, origin_server_ts FROM events WHERE stream_ordering = ?',
      ),
      roomsWithNotifications: db
        .prepare<[number], string>(
          `SELECT name FROM push_names
            WHERE id IN (SELECT DISTINCT room_name_id FROM push_notifications WHERE user_name_id = ?)`,
        )
        .pluck(),
      notificationsOf: db.prepare<
        [number, number, number, number],
        UnwrittenRow & { event_id: string; origin_server_ts: number }
      >(
        `SELECT r.name AS room_id, n.stream_ordering, n.thread_id, a.name AS actions, n.highlight,
                e.event_id, e.origin_server_ts
           FROM push_notifications n JOIN events e ON e.stream_ordering = n.stream_ordering
                JOIN push_names r ON r.id = n.room_name_id JOIN push_names a ON a.id = n.actions_name_id
          WHERE n.user_name_id = ? AND n.stream_ordering < ? AND n.highlight >= ?
          ORDER BY n.stream_ordering DESC LIMIT ?`,
      ),
    };
  }

  async getPushRules(userId: string): Promise<JsonObject | null> {
    const rules = this.statements.getRules.get(userId);
    return rules === undefined ? null : (JSON.parse(rules) as JsonObject);
  }

  putPushRules(userId: string, rules: JsonObject): Promise<void> {
    const json = JSON.stringify(rules);
    return this.enqueue(() => {
      this.statements.putRules.run(userId, json);
    });
  }

  async pushersOfUser(userId: string): Promise<PusherRecord[]> {
    return this.statements.pushersOfUser.all(userId).map(toPusher);
  }

  async pushersOfUsers(userIds: readonly string[]): Promise<PusherRecord[]> {
    const pushers: PusherRecord[] = [];
    for (const chunk of parameterChunks([...new Set(userIds)])) {
      const rows = this.connection.sqlite
        .prepare<string[], PusherRow>(
          `SELECT ${PUSHER_COLUMNS} FROM pushers WHERE user_id IN (${chunk.map(() => '?').join(', ')})`,
        )
        .all(...chunk);
      pushers.push(...rows.map(toPusher));
    }
    return pushers;
  }

  async usersWithPushers(kind: string): Promise<string[]> {
    return this.connection.sqlite
      .prepare<[string], { user_id: string }>('SELECT DISTINCT user_id FROM pushers WHERE kind = ?')
      .all(kind)
      .map((row) => row.user_id);
  }

  setPusher(pusher: PusherRecord, append: boolean): Promise<void> {
    const row: PusherRow = {
      app_id: pusher.appId,
      pushkey: pusher.pushkey,
      user_id: pusher.userId,
      device_id: pusher.deviceId,
      kind: pusher.kind,
      app_display_name: pusher.appDisplayName,
      device_display_name: pusher.deviceDisplayName,
      profile_tag: pusher.profileTag,
      lang: pusher.lang,
      data: JSON.stringify(pusher.data),
      created_ts: pusher.createdTs,
    };
    return this.enqueue(() => {
      if (!append) this.statements.deleteOthersPushkey.run(pusher.appId, pusher.pushkey, pusher.userId);
      this.statements.upsertPusher.run(row);
    });
  }

  deletePusher(userId: string, appId: string, pushkey: string): Promise<boolean> {
    return this.enqueue(() => this.statements.deletePusher.run(userId, appId, pushkey).changes > 0);
  }

  deletePushkey(appId: string, pushkey: string): Promise<number> {
    return this.enqueue(() => this.statements.deletePushkey.run(appId, pushkey).changes);
  }

  /** Visible to reads at once; written within UNWRITTEN_DELAY_MS (see UNWRITTEN_DELAY_MS). */
  addNotifications(records: readonly NewNotification[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    let row: UnwrittenRow | undefined;
    for (const record of records) {
      const actions = actionsJson(record.actions);
      const highlight = record.highlight ? 1 : 0;
      // One event's recipients come together, most with the same outcome: one row object for them.
      if (
        row === undefined ||
        row.stream_ordering !== record.streamOrdering ||
        row.room_id !== record.roomId ||
        row.thread_id !== record.threadId ||
        row.actions !== actions ||
        row.highlight !== highlight
      ) {
        row = {
          room_id: record.roomId,
          stream_ordering: record.streamOrdering,
          thread_id: record.threadId,
          actions,
          highlight,
        };
      }
      const key = this.keyOf(record.userId, record.roomId);
      this.countAdded(key, row);
      const list = this.unwritten.get(key);
      if (list === undefined) {
        this.unwritten.set(key, [row]);
        this.unwrittenRows++;
        continue;
      }
      // In stream order; the same event again replaces its row (as INSERT OR REPLACE does).
      let at = list.length;
      while (at > 0 && list[at - 1]!.stream_ordering > row.stream_ordering) at--;
      if (at > 0 && list[at - 1]!.stream_ordering === row.stream_ordering) {
        list[at - 1] = row;
        continue;
      }
      list.splice(at, 0, row);
      this.unwrittenRows++;
    }
    this.scheduleWrite();
    return Promise.resolve();
  }

  /** Writes every unwritten notification and read mark now, and no more later (closing). */
  writeUnwritten(): Promise<void> {
    this.closing = true;
    if (this.writeTimer !== null) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    const marks = this.writeMarks();
    const rows = this.writeChunk([...this.unwritten.keys()]);
    return Promise.all([marks, rows]).then(() => {});
  }

  /** Whether anything waits to be written. */
  private get anyUnwritten(): boolean {
    return this.unwrittenRows > 0 || this.unwrittenMarks.size > 0;
  }

  private scheduleWrite(): void {
    if (this.writing !== null || this.closing) return;
    if (this.unwrittenRows >= UNWRITTEN_ROWS_MAX) {
      if (this.writeTimer !== null) clearTimeout(this.writeTimer);
      this.writeTimer = null;
      this.startWriting();
      return;
    }
    this.writeLater();
  }

  /** The one delayed write: starts UNWRITTEN_DELAY_MS from now, unless one is set already. */
  private writeLater(): void {
    if (this.writeTimer !== null) return;
    this.writeTimer = setTimeout(() => {
      this.writeTimer = null;
      this.startWriting();
    }, UNWRITTEN_DELAY_MS);
    this.writeTimer.unref();
  }

  private startWriting(): void {
    this.writing = this.writeAll().then(
      () => this.wrote(false),
      // A failed write keeps what it took (writeChunk, writeMarks) and is tried again after the delay.
      () => this.wrote(true),
    );
  }

  private wrote(failed: boolean): void {
    this.writing = null;
    if (this.closing || !this.anyUnwritten) return;
    if (failed) this.writeLater();
    else this.scheduleWrite();
  }

  /**
   * One round: the rows in chunks, in key order. The read marks moved since the previous
   * chunk go with each chunk, in the same group commit but as a write of their own,
   * committed or rolled back alone: rows that fail to be written never hold marks back,
   * and marks wait one chunk, not a round. A failed rows chunk ends the round.
   */
  private async writeAll(): Promise<void> {
    // Sorted once per round: rows added meanwhile under new keys wait for the next round.
    const keys = [...this.unwritten.keys()].sort();
    let marksFailure: { error: unknown } | undefined;
    const writeMarks = () =>
      this.writeMarks().catch((error: unknown) => {
        marksFailure ??= { error };
      });
    if (keys.length === 0) await writeMarks();
    for (let next = 0; next < keys.length; ) {
      const from = next;
      let rows = 0;
      while (next < keys.length && rows < ROWS_PER_WRITE)
        rows += this.unwritten.get(keys[next++]!)?.length ?? 0;
      const marks = writeMarks();
      try {
        await this.writeChunk(keys.slice(from, next));
      } finally {
        await marks;
      }
    }
    if (marksFailure !== undefined) throw marksFailure.error;
  }

  /**
   * Writes every unwritten read mark, as a write of its own. The marks leave memory inside
   * the write (see writeChunk); rolled back, they are kept for the next write.
   */
  private writeMarks(): Promise<void> {
    if (this.unwrittenMarks.size === 0) return Promise.resolve();
    let taken: Map<string, Map<string, number>> | null = null;
    return this.enqueue(() => {
      if (this.unwrittenMarks.size === 0) return;
      taken = new Map(this.unwrittenMarks);
      this.unwrittenMarks.clear();
      for (const [key, marks] of taken) {
        const [userId, roomId] = splitUnreadKey(key);
        for (const [thread, ordering] of marks)
          this.statements.advanceMark.run(userId, roomId, thread, ordering);
      }
    }).then(
      () => {
        taken = null;
      },
      (error: unknown) => {
        if (taken !== null) this.keepMarks(taken);
        throw error;
      },
    );
  }

  /**
   * Writes the unwritten rows of these (user, room) keys: given in key order, a chunk touches
   * few pages. Rows leave memory inside the write: no read can run between that and the
   * commit (the transaction is synchronous), so each is always seen exactly once, in memory
   * or in the table.
   */
  private writeChunk(keys: readonly string[]): Promise<void> {
    let taken: [key: string, rows: UnwrittenRow[]][] = [];
    return this.enqueue(() => {
      // Many rows per statement: one VM round trip per ROWS_PER_INSERT rows instead of per row.
      const values: unknown[] = [];
      let actions = '';
      let actionsId = 0;
      for (const key of keys) {
        const list = this.unwritten.get(key);
        if (list === undefined) continue;
        this.unwritten.delete(key);
        this.unwrittenRows -= list.length;
        taken.push([key, list]);
        const [userId, roomId] = splitUnreadKey(key);
        const userNameId = this.internName(userId);
        const roomNameId = this.internName(roomId);
        for (const row of list) {
          // Consecutive rows mostly share their actions (one event's recipients).
          if (row.actions !== actions) {
            actions = row.actions;
            actionsId = this.internName(actions);
          }
          values.push(userNameId, roomNameId, row.stream_ordering, row.thread_id, actionsId, row.highlight);
          if (values.length === ROWS_PER_INSERT * NOTIFICATION_PARAMETERS) {
            this.statements.insertNotifications.run(values);
            values.length = 0;
          }
        }
      }
      for (let at = 0; at < values.length; at += NOTIFICATION_PARAMETERS)
        this.statements.insertNotification.run(values.slice(at, at + NOTIFICATION_PARAMETERS));
    }).then(
      () => {
        taken = [];
      },
      (error: unknown) => {
        // Names added in the rolled-back write are gone from the table: read them again.
        this.nameIds = new Map();
        // Not written (rolled back): keep them for the next write, ahead of newer rows.
        for (const [key, list] of taken) {
          this.unwritten.set(key, [...list, ...(this.unwritten.get(key) ?? [])]);
          this.unwrittenRows += list.length;
        }
        throw error;
      },
    );
  }

  private keyOf(userId: string, roomId: string): string {
    return this.keys.of(userId, roomId);
  }

  /** The push_names ID of a name, or undefined when no written row uses it. */
  private nameId(name: string): number | undefined {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.statements.nameId.get(name);
      if (id !== undefined) this.rememberName(name, id);
    }
    return id;
  }

  /** The push_names ID of a name, added if new (inside a write only: it rolls back with it). */
  private internName(name: string): number {
    let id = this.nameId(name);
    if (id === undefined) {
      id = this.statements.addName.get(name)!;
      this.rememberName(name, id);
    }
    return id;
  }

  private rememberName(name: string, id: number): void {
    if (this.nameIds.size >= NAME_IDS_MAX) this.nameIds = new Map();
    this.nameIds.set(name, id);
  }

  /** A new notification, added to the cached counts it belongs to (before anyone reads them). */
  private countAdded(key: string, row: UnwrittenRow): void {
    const cached = this.unread.get(key);
    if (cached === undefined) return;
    // Maybe counted already or replaced: count again on next use.
    if (row.stream_ordering <= cached.newest) {
      this.unread.delete(key);
      return;
    }
    if (!isUnread(row, cached.marks)) return;
    // Counted in place (a message in a big room adds to every member's counts); readers get a
    // fresh snapshot on their next read.
    cached.newest = row.stream_ordering;
    cached.counts = undefined;
    cached.notificationCount++;
    cached.highlightCount += row.highlight;
    const thread = cached.threads.get(row.thread_id);
    if (thread === undefined)
      cached.threads.set(row.thread_id, { notificationCount: 1, highlightCount: row.highlight });
    else {
      thread.notificationCount++;
      thread.highlightCount += row.highlight;
    }
  }

  async notificationsOf(
    userId: string,
    options: { readonly before?: number; readonly limit: number; readonly onlyHighlight: boolean },
  ): Promise<NotificationRecord[]> {
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    const userNameId = this.nameId(userId);
    const written =
      userNameId === undefined
        ? []
        : this.statements.notificationsOf.all(
            userNameId,
            before,
            options.onlyHighlight ? 1 : 0,
            options.limit,
          );
    const unwritten: typeof written = [];
    for (const row of this.unwrittenOf(userId)) {
      if (row.stream_ordering >= before || (options.onlyHighlight && row.highlight === 0)) continue;
      const event = this.statements.eventAt.get(row.stream_ordering);
      if (event !== undefined) unwritten.push({ ...row, ...event });
    }
    // An unwritten row replaces a written one of the same event (an event evaluated again).
    const replaced = new Set(unwritten.map((row) => `${row.room_id} ${row.stream_ordering}`));
    const rows =
      unwritten.length === 0
        ? written
        : [...written.filter((row) => !replaced.has(`${row.room_id} ${row.stream_ordering}`)), ...unwritten]
            .sort((a, b) => b.stream_ordering - a.stream_ordering)
            .slice(0, options.limit);
    const marks = new Map<string, Map<string, number>>();
    return rows.map((row) => {
      let roomMarks = marks.get(row.room_id);
      if (roomMarks === undefined) {
        roomMarks = this.marksOf(userId, row.room_id);
        marks.set(row.room_id, roomMarks);
      }
      return {
        userId,
        roomId: row.room_id,
        eventId: row.event_id,
        streamOrdering: row.stream_ordering,
        threadId: row.thread_id,
        actions: JSON.parse(row.actions) as NotificationRecord['actions'],
        highlight: row.highlight === 1,
        ts: row.origin_server_ts,
        read: !isUnread(row, roomMarks),
      };
    });
  }

  /** The user's unwritten notifications, in every room. */
  private *unwrittenOf(userId: string): Generator<UnwrittenRow> {
    const prefix = unreadKey(userId, '');
    for (const [key, rows] of this.unwritten) if (key.startsWith(prefix)) yield* rows;
  }

  advanceReadMark(mark: ReadMark): Promise<void> {
    return this.enqueue(() => {
      // In the transaction: nothing reads between this and the commit (it is synchronous).
      this.unread.delete(unreadKey(mark.userId, mark.roomId));
      this.statements.advanceMark.run(
        mark.userId,
        mark.roomId,
        mark.threadId ?? UNTHREADED,
        mark.streamOrdering,
      );
    });
  }

  /**
   * A read mark implied by the user's own event (sending is reading): counted in every read
   * at once, and written beside the next chunk of notification rows (UNWRITTEN_DELAY_MS), with
   * every other mark moved meanwhile, the newest of each, riding the group commit of that
   * moment: not a commit and a page write per send (measured: 1.2-1.4 commits and 109 µs of
   * SQLite per one-client send before, 1.01 and 83 µs after).
   * A crash in that window loses the mark's move: notifications of the room that came
   * before the user's last event count as unread again until their next event or receipt
   * moves the mark. Their own event never counts (no one is notified of their own event),
   * and notification rows of the same window are lost alike.
   */
  advanceReadMarkSoon(mark: ReadMark): void {
    const key = unreadKey(mark.userId, mark.roomId);
    const thread = mark.threadId ?? UNTHREADED;
    let marks = this.unwrittenMarks.get(key);
    if (marks === undefined) {
      marks = new Map();
      this.unwrittenMarks.set(key, marks);
    }
    if ((marks.get(thread) ?? 0) >= mark.streamOrdering) return;
    marks.set(thread, mark.streamOrdering);
    this.unread.delete(key);
    this.scheduleWrite();
  }

  /** Marks whose write rolled back: kept (the newest of each) for the next write. */
  private keepMarks(taken: ReadonlyMap<string, ReadonlyMap<string, number>>): void {
    for (const [key, marks] of taken) {
      const kept = this.unwrittenMarks.get(key) ?? new Map<string, number>();
      for (const [thread, ordering] of marks) kept.set(thread, Math.max(ordering, kept.get(thread) ?? 0));
      this.unwrittenMarks.set(key, kept);
      // Counts cached while the marks were out of memory missed them.
      this.unread.delete(key);
    }
  }

  async unreadCounts(userId: string, roomIds: readonly string[]): Promise<Map<string, RoomUnreadCounts>> {
    return this.unreadCountsNow(userId, roomIds);
  }

  unreadCountsNow(userId: string, roomIds: readonly string[]): Map<string, RoomUnreadCounts> {
    const counts = new Map<string, RoomUnreadCounts>();
    for (const roomId of roomIds) {
      const room = this.unreadInRoom(userId, roomId);
      if (room.notificationCount > 0) counts.set(roomId, room);
    }
    return counts;
  }

  async totalUnread(userId: string): Promise<number> {
    const userNameId = this.nameId(userId);
    const rooms = new Set(
      userNameId === undefined ? [] : this.statements.roomsWithNotifications.all(userNameId),
    );
    for (const row of this.unwrittenOf(userId)) rooms.add(row.room_id);
    let total = 0;
    for (const counts of (await this.unreadCounts(userId, [...rooms])).values())
      total += counts.notificationCount;
    return total;
  }

  private unreadInRoom(userId: string, roomId: string): RoomUnreadCounts {
    const key = unreadKey(userId, roomId);
    const cached = this.unread.get(key);
    if (cached !== undefined) {
      cached.counts ??= snapshotOf(cached);
      return cached.counts;
    }
    // Synchronous from here on: the marks and the counts are read from the same committed state.
    const marks = this.marksOf(userId, roomId);
    const threadMarks =
      marks.size > (marks.has(UNTHREADED) ? 1 : 0) ? JSON.stringify(Object.fromEntries(marks)) : null;
    const userNameId = this.nameId(userId);
    const roomNameId = this.nameId(roomId);
    // A user or room no written row names has none to count.
    const rows =
      userNameId === undefined || roomNameId === undefined
        ? []
        : this.statements.unreadInRoom.all(
            userNameId,
            roomNameId,
            marks.get(UNTHREADED) ?? 0,
            threadMarks,
            threadMarks,
          );
    let notificationCount = 0;
    let highlightCount = 0;
    let newest = 0;
    const threads = new Map<string, UnreadCount>();
    for (const row of rows) {
      notificationCount += row.notifications;
      highlightCount += row.highlights;
      newest = Math.max(newest, row.newest);
      threads.set(row.thread_id, { notificationCount: row.notifications, highlightCount: row.highlights });
    }
    const writtenNewest = newest;
    const count = (row: { thread_id: string; highlight: number }, sign: 1 | -1) => {
      notificationCount += sign;
      highlightCount += sign * row.highlight;
      const thread = threads.get(row.thread_id);
      const updated = {
        notificationCount: (thread?.notificationCount ?? 0) + sign,
        highlightCount: (thread?.highlightCount ?? 0) + sign * row.highlight,
      };
      if (updated.notificationCount === 0) threads.delete(row.thread_id);
      else threads.set(row.thread_id, updated);
    };
    for (const row of this.unwritten.get(key) ?? []) {
      newest = Math.max(newest, row.stream_ordering);
      if (row.stream_ordering <= writtenNewest) {
        // Rare (an event evaluated again): this row replaces a written one, which was counted.
        const written = this.statements.writtenRow.get(userNameId!, roomNameId!, row.stream_ordering);
        if (written !== undefined && isUnread({ ...written, stream_ordering: row.stream_ordering }, marks))
          count(written, -1);
      }
      if (isUnread(row, marks)) count(row, 1);
    }
    const counted: CachedUnread = {
      counts: undefined,
      notificationCount,
      highlightCount,
      threads: new Map([...threads].map(([thread, count]) => [thread, { ...count }])),
      marks,
      newest,
    };
    const counts = snapshotOf(counted);
    counted.counts = counts;
    this.unread.set(key, counted);
    if (this.unread.size > UNREAD_CACHE_MAX) this.unread.delete(this.unread.keys().next().value!);
    return counts;
  }

  private marksOf(userId: string, roomId: string): Map<string, number> {
    const marks = new Map<string, number>();
    for (const row of this.statements.marksOfRoom.all(userId, roomId))
      marks.set(row.thread_id, row.stream_ordering);
    for (const [thread, ordering] of this.unwrittenMarks.get(unreadKey(userId, roomId)) ?? [])
      if (ordering > (marks.get(thread) ?? 0)) marks.set(thread, ordering);
    return marks;
  }
}

/** Compiled push rules keep their action lists: each is serialised once, not once per row. */
const serialisedActions = new WeakMap<object, string>();

function actionsJson(actions: NewNotification['actions']): string {
  let json = serialisedActions.get(actions);
  if (json === undefined) {
    json = JSON.stringify(actions);
    serialisedActions.set(actions, json);
  }
  return json;
}

/** What readers get: a copy of the cached counts (NO_UNREAD for none), which later adds leave alone. */
function snapshotOf(cached: CachedUnread): RoomUnreadCounts {
  if (cached.notificationCount === 0) return NO_UNREAD;
  const threads = new Map<string, UnreadCount>();
  for (const [thread, count] of cached.threads)
    threads.set(thread, { notificationCount: count.notificationCount, highlightCount: count.highlightCount });
  return {
    notificationCount: cached.notificationCount,
    highlightCount: cached.highlightCount,
    threads,
  };
}

const UNREAD_KEY_SEPARATOR = '\u0000';

function unreadKey(userId: string, roomId: string): string {
  return `${userId}${UNREAD_KEY_SEPARATOR}${roomId}`;
}

function splitUnreadKey(key: string): [userId: string, roomId: string] {
  const at = key.indexOf('\u0000');
  return [key.slice(0, at), key.slice(at + 1)];
}

/** Unread: after the unthreaded mark and after the mark of its own thread. */
function isUnread(
  row: { thread_id: string; stream_ordering: number },
  marks: ReadonlyMap<string, number>,
): boolean {
  return (
    row.stream_ordering > (marks.get(UNTHREADED) ?? 0) &&
    row.stream_ordering > (marks.get(row.thread_id) ?? 0)
  );
}

function toPusher(row: PusherRow): PusherRecord {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    kind: row.kind,
    appId: row.app_id,
    pushkey: row.pushkey,
    appDisplayName: row.app_display_name,
    deviceDisplayName: row.device_display_name,
    profileTag: row.profile_tag,
    lang: row.lang,
    data: JSON.parse(row.data) as JsonObject,
    createdTs: row.created_ts,
  };
}
