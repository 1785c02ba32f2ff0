/**
 * What the delivery line (delivery worker thread) knows of the users it may push
 * to: their http pushers, grouped into one request per gateway URL and format,
 * and their badge (`counts.unread`, push_notifier.yaml). The main thread posts every
 * notified user and knows nothing of either: the line asks it once per user (their
 * pushers and unread total) and counts the badge on from there, one more per
 * notification. When a user's read marks move or their pushers change, the main
 * thread says so and the user is asked about again.
 *
 * Events whose recipients are not all known wait, in order, for the answers, so
 * that each user's pushes keep the order of their events.
 *
 * A total read at the very moment a notification is counted but not yet posted may
 * count that notification twice: the badge is then one too high until the user's
 * read marks next move.
 */
import type { PusherRecord } from '../../storage/push-store.js';
import type { PushTarget } from './gateway-queues.js';

/** One request per event for a user: their pushers that share a gateway URL and format. */
export interface PushRoute {
  /** The queue it goes through: the user and the gateway URL. */
  readonly key: string;
  readonly url: string;
  /** `event_id_only` pushers: no event details in the request. */
  readonly idOnly: boolean;
  readonly targets: readonly PushTarget[];
  /** Each device's JSON object, open before its `tweaks`. */
  readonly devicePrefixes: readonly string[];
  /** The devices JSON last built, and the tweaks it was built with (they rarely change). */
  lastTweaks?: string;
  lastDevices?: string;
}

/** A known user: their routes (none: no http pushers) and their badge. */
export interface Recipient {
  readonly routes: readonly PushRoute[];
  /** Unread notifications, counted so far; undefined: to be asked. */
  unread: number | undefined;
  /** Read while storage failed: used for the events waiting, then asked again. */
  readonly transient: boolean;
}

/** The main thread's answer about one user. */
export interface UserFacts {
  readonly userId: string;
  /** Their http pushers. */
  readonly pushers: readonly PusherRecord[];
  /** Their unread total, every notification posted to the line so far included. */
  readonly unread: number;
  readonly transient?: boolean;
}

/** An event's recipients as the line takes them in. */
export interface Admitted<T> {
  readonly userIds: readonly string[];
  readonly item: T;
}

export interface RecipientBookOptions<T> {
  /** Posts a question about these users (at most `MAX_ASK` of them) to the main thread. */
  readonly ask: (userIds: string[]) => void;
  /** An event whose recipients are all known, in the order admitted. */
  readonly ready: (admitted: Admitted<T>) => void;
  /** Users kept (beyond those of waiting events). */
  readonly size?: number;
}

/** Users asked about per question: the main thread answers each in one turn. */
export const MAX_ASK = 256;

export class RecipientBook<T> {
  /** Known users, oldest first (evicted in that order). */
  private readonly known = new Map<string, Recipient>();
  /** Users asked about and not yet answered -> whether their pushers changed since (the answer is stale). */
  private readonly asked = new Map<string, boolean>();
  private readonly waiting: Admitted<T>[] = [];
  private readonly size: number;

  constructor(private readonly options: RecipientBookOptions<T>) {
    this.size = options.size ?? 20_000;
  }

  /** Takes an event in: ready now, or after the answers it waits for. */
  admit(admitted: Admitted<T>): void {
    if (this.waiting.length === 0 && this.allKnown(admitted.userIds)) {
      this.options.ready(admitted);
      return;
    }
    this.waiting.push(admitted);
    this.askAbout(admitted.userIds);
  }

  /**
   * A user's routes, with this notification counted in their badge; undefined when
   * they have no http pushers. Only for users of a ready event.
   */
  notified(userId: string): Recipient | undefined {
    const recipient = this.known.get(userId);
    if (recipient === undefined || recipient.routes.length === 0) return undefined;
    recipient.unread = (recipient.unread ?? 0) + 1;
    return recipient;
  }

  /** The main thread's answers. */
  learn(users: readonly UserFacts[]): void {
    // A total counts every notification posted before it, those of waiting events too: they count again when ready.
    const waitingOf = this.waitingCounts(users);
    for (const user of users) {
      const stale = this.asked.get(user.userId);
      this.asked.delete(user.userId);
      this.known.delete(user.userId);
      // Pushers changed while the answer was read: ask again (drain does, if an event needs them).
      if (stale === true) continue;
      const routes = routesOf(user.userId, user.pushers);
      const unread = routes.length === 0 ? undefined : user.unread - (waitingOf.get(user.userId) ?? 0);
      this.known.set(user.userId, { routes, unread, transient: user.transient === true });
    }
    this.drain();
  }

  /** The user's pushers changed (all users' when undefined): ask again. */
  forget(userId?: string): void {
    if (userId === undefined) {
      this.known.clear();
      for (const asked of this.asked.keys()) this.asked.set(asked, true);
    } else {
      this.known.delete(userId);
      if (this.asked.has(userId)) this.asked.set(userId, true);
    }
    this.askForWaiting();
  }

  /**
   * These users' read marks moved: their badges are asked again. (An answer already
   * on its way may predate the move: its total is taken, one read late, rather than
   * asking again and again while the user keeps reading.)
   */
  read(userIds: readonly string[]): void {
    let changed = false;
    for (const userId of userIds) {
      const recipient = this.known.get(userId);
      if (recipient === undefined || recipient.unread === undefined) continue;
      recipient.unread = undefined;
      changed = true;
    }
    if (changed) this.askForWaiting();
  }

  /** Empties the waiting line (stopping); returns what waited. */
  takeWaiting(): Admitted<T>[] {
    return this.waiting.splice(0);
  }

  private isKnown(userId: string): boolean {
    const recipient = this.known.get(userId);
    return recipient !== undefined && (recipient.routes.length === 0 || recipient.unread !== undefined);
  }

  private allKnown(userIds: readonly string[]): boolean {
    for (const userId of userIds) if (!this.isKnown(userId)) return false;
    return true;
  }

  private askAbout(userIds: readonly string[]): void {
    let question: string[] = [];
    for (const userId of userIds) {
      if (this.isKnown(userId) || this.asked.has(userId)) continue;
      this.asked.set(userId, false);
      question.push(userId);
      if (question.length === MAX_ASK) {
        this.options.ask(question);
        question = [];
      }
    }
    if (question.length > 0) this.options.ask(question);
  }

  private askForWaiting(): void {
    for (const admitted of this.waiting) this.askAbout(admitted.userIds);
  }

  private waitingCounts(users: readonly UserFacts[]): Map<string, number> {
    const counts = new Map<string, number>();
    if (this.waiting.length === 0) return counts;
    for (const user of users) counts.set(user.userId, 0);
    for (const admitted of this.waiting) {
      for (const userId of admitted.userIds) {
        const count = counts.get(userId);
        if (count !== undefined) counts.set(userId, count + 1);
      }
    }
    return counts;
  }

  /** Hands on the waiting events whose recipients are now all known, in order. */
  private drain(): void {
    while (this.waiting.length > 0 && this.allKnown(this.waiting[0]!.userIds)) {
      this.options.ready(this.waiting.shift()!);
    }
    this.askForWaiting();
    if (this.waiting.length > 0) return;
    // Nothing waits: what storage could not tell is asked again next time, and the oldest go.
    for (const [userId, recipient] of this.known) if (recipient.transient) this.known.delete(userId);
    for (const userId of this.known.keys()) {
      if (this.known.size <= this.size) break;
      this.known.delete(userId);
    }
  }
}

/** A user's http pushers grouped into routes: those sharing a gateway URL and format share a request. */
export function routesOf(userId: string, pushers: readonly PusherRecord[]): PushRoute[] {
  const groups = new Map<string, PusherRecord[]>();
  for (const pusher of pushers) {
    if (typeof pusher.data.url !== 'string') continue;
    const key = `${pusher.data.format === 'event_id_only' ? 'id' : 'full'} ${pusher.data.url}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [pusher]);
    else group.push(pusher);
  }
  return [...groups.values()].map((group) => {
    const url = group[0]!.data.url as string;
    return {
      key: `${userId} ${url}`,
      url,
      idOnly: group[0]!.data.format === 'event_id_only',
      targets: group.map((pusher) => ({
        userId: pusher.userId,
        appId: pusher.appId,
        pushkey: pusher.pushkey,
      })),
      devicePrefixes: group.map((pusher) => {
        const { url: _url, ...data } = pusher.data;
        const device = {
          app_id: pusher.appId,
          pushkey: pusher.pushkey,
          pushkey_ts: Math.floor(pusher.createdTs / 1000),
          data,
        };
        return `${JSON.stringify(device).slice(0, -1)},"tweaks":`;
      }),
    };
  });
}
