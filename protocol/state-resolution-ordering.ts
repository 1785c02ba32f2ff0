/**
 * The two orderings of state resolution v2 (spec: rooms/v2 "State resolution", definitions
 * "Reverse topological power ordering" and "Mainline ordering").
 */
import type { AuthEventGraph } from './state-resolution-graph.js';

/** Sort key of the reverse topological power ordering: x < y by power desc, then ts asc, then ID asc. */
export interface PowerOrderKey {
  readonly powerLevel: number;
  readonly originServerTs: number;
  readonly eventId: string;
}

export function comparePowerOrder(x: PowerOrderKey, y: PowerOrderKey): number {
  if (x.powerLevel !== y.powerLevel) return x.powerLevel > y.powerLevel ? -1 : 1;
  if (x.originServerTs !== y.originServerTs) return x.originServerTs < y.originServerTs ? -1 : 1;
  return compareEventIds(x.eventId, y.eventId);
}

export function compareEventIds(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A binary min-heap; Kahn's algorithm takes the smallest candidate at every step. */
class CandidateHeap<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && this.#compare(items[left]!, items[smallest]!) < 0) smallest = left;
        if (right < items.length && this.#compare(items[right]!, items[smallest]!) < 0) smallest = right;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

/**
 * Kahn's algorithm over `authEdges` (event -> its auth events within the sorted set), emitting
 * auth events before the events citing them and, among the candidates at each step, the
 * smallest by `compare`. Returns earliest first. Every auth event named in `authEdges` must be
 * a key of it too.
 */
export function lexicographicalTopologicalSort<K extends { eventId: string }>(
  authEdges: ReadonlyMap<string, readonly string[]>,
  keyOf: (eventId: string) => K,
  compare: (x: K, y: K) => number,
): string[] {
  const remainingAuthEvents = new Map<string, number>();
  const citedBy = new Map<string, string[]>();
  const heap = new CandidateHeap<K>(compare);
  for (const [eventId, authIds] of authEdges) {
    remainingAuthEvents.set(eventId, authIds.length);
    if (authIds.length === 0) heap.push(keyOf(eventId));
    for (const authId of authIds) {
      const citing = citedBy.get(authId);
      if (citing === undefined) citedBy.set(authId, [eventId]);
      else citing.push(eventId);
    }
  }

  const sorted: string[] = [];
  while (heap.size > 0) {
    const { eventId } = heap.pop()!;
    sorted.push(eventId);
    for (const citing of citedBy.get(eventId) ?? []) {
      const remaining = remainingAuthEvents.get(citing)! - 1;
      remainingAuthEvents.set(citing, remaining);
      if (remaining === 0) heap.push(keyOf(citing));
    }
  }
  return sorted;
}

/**
 * Mainline ordering based on `powerLevelsEventId` (spec: "Mainline ordering"). Events whose
 * power-levels ancestry never meets the mainline get position ∞ and sort first.
 */
export function mainlineOrder(
  graph: AuthEventGraph,
  eventIds: Iterable<string>,
  powerLevelsEventId: string | undefined,
): string[] {
  // Mainline [P0, P1, ..., Pn]: P(i+1) is the power-levels auth event of Pi.
  const mainlineIndex = new Map<string, number>();
  for (let p = powerLevelsEventId, i = 0; p !== undefined; p = graph.powerLevelsAuthEventId(p), i++) {
    if (mainlineIndex.has(p)) break;
    mainlineIndex.set(p, i);
  }

  // Position of a power-levels event e_j in some event's list: its mainline index if on the
  // mainline, else the position of its own power-levels auth event. Memoised, as events
  // share their power-levels ancestry.
  const positionFrom = new Map<string, number>();
  const positionOfAncestor = (start: string | undefined): number => {
    const path: string[] = [];
    let position = Number.POSITIVE_INFINITY;
    for (let p = start; p !== undefined; p = graph.powerLevelsAuthEventId(p)) {
      const known = mainlineIndex.get(p) ?? positionFrom.get(p);
      if (known !== undefined) {
        position = known;
        break;
      }
      path.push(p);
    }
    for (const p of path) positionFrom.set(p, position);
    return position;
  };

  const keys = [...eventIds].map((eventId) => ({
    eventId,
    // The list starts at e1, the power-levels auth event of e; e itself is not included.
    position: positionOfAncestor(graph.powerLevelsAuthEventId(eventId)),
    originServerTs: graph.event(eventId).pdu.origin_server_ts,
  }));
  keys.sort(
    (x, y) =>
      (x.position !== y.position ? (x.position > y.position ? -1 : 1) : 0) ||
      (x.originServerTs !== y.originServerTs ? (x.originServerTs < y.originServerTs ? -1 : 1) : 0) ||
      compareEventIds(x.eventId, y.eventId),
  );
  return keys.map((k) => k.eventId);
}
