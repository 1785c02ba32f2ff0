/**
 * Cache keys made of two strings (a user and a room, a user and a filter ID), made
 * once. A woken sync looks up several caches by such keys for every message: built by
 * concatenation, each lookup allocated a string and hashed and compared it whole. Here
 * the same two strings give back the same key string, whose hash V8 keeps with it, by
 * two lookups of strings that already have theirs. Bounded (a client choosing filter IDs
 * chooses second parts): past `firsts` first parts, or `secondsEach` second parts of one,
 * those keys are forgotten (and made again as they are asked for).
 */
export class PairKeys {
  private readonly keys = new Map<string, Map<string, string>>();

  private readonly firsts: number;
  private readonly secondsEach: number;

  constructor(
    private readonly separator: string,
    bounds: { readonly firsts?: number; readonly secondsEach?: number } = {},
  ) {
    this.firsts = bounds.firsts ?? 50_000;
    this.secondsEach = bounds.secondsEach ?? 10_000;
  }

  /** `${first}${separator}${second}`, the same string object every time while remembered. */
  of(first: string, second: string): string {
    let bySecond = this.keys.get(first);
    if (bySecond === undefined) {
      if (this.keys.size >= this.firsts) this.keys.clear();
      bySecond = new Map();
      this.keys.set(first, bySecond);
    }
    let key = bySecond.get(second);
    if (key === undefined) {
      if (bySecond.size >= this.secondsEach) bySecond.clear();
      key = `${first}${this.separator}${second}`;
      bySecond.set(second, key);
    }
    return key;
  }
}
