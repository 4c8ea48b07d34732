/**
 * The simplest possible statement of the index's semantics, for property tests: a flat map of
 * entries, scanned in full for every question. Engines must agree with it on everything a user can
 * observe: what a lookup matches, how many entries each scope and replica holds, and which entries
 * a sweep or the cap removes.
 */

export interface ReferenceEntry {
  tokenCount: number;
  confirmedAt: number;
  /** Order of confirmation: the cap and sweeps take the lowest first. */
  order: number;
}

/** (tenant, model, scheme, prefix, replica) as one key; names in tests never contain "|". */
export function entryKey(
  tenant: string,
  model: string,
  scheme: string,
  prefix: number,
  replica: string,
): string {
  return `${tenant}|${model}|${scheme}|${prefix}|${replica}`;
}

export class ReferenceIndex {
  readonly entries = new Map<string, ReferenceEntry>();
  #order = 0;

  constructor(
    readonly ttlMs: number,
    readonly maxEntries: number,
  ) {}

  /** Adds or refreshes prefixes deepest first, evicting the least recently confirmed at the cap. */
  add(
    scope: string[],
    replica: string,
    prefixes: readonly { n: number; tokenCount: number }[],
    now: number,
  ) {
    const [tenant, model, scheme] = scope as [string, string, string];
    for (let i = prefixes.length - 1; i >= 0; i--) {
      const { n, tokenCount } = prefixes[i] as { n: number; tokenCount: number };
      const key = entryKey(tenant, model, scheme, n, replica);
      const known = this.entries.get(key);
      if (known) {
        Object.assign(known, { tokenCount, confirmedAt: now, order: this.#order++ });
        continue;
      }
      while (this.entries.size >= this.maxEntries) this.entries.delete(this.#oldest()[0] as string);
      this.entries.set(key, { tokenCount, confirmedAt: now, order: this.#order++ });
    }
  }

  /** Removes every entry whose key matches all the given parts (undefined = any). */
  remove(match: (parts: string[]) => boolean) {
    for (const key of [...this.entries.keys()]) if (match(key.split("|"))) this.entries.delete(key);
  }

  /** Removes up to `budget` expired entries, oldest first; returns how many. */
  sweep(budget: number, now: number): number {
    const expired = [...this.entries]
      .filter(([, e]) => e.confirmedAt < now - this.ttlMs)
      .sort((a, b) => a[1].order - b[1].order)
      .slice(0, budget);
    for (const [key] of expired) this.entries.delete(key);
    return expired.length;
  }

  /** Each replica's run from the head of `chain`: "replica:blocks:tokens", sorted. */
  matches(
    scope: string[],
    replicas: readonly string[],
    chain: readonly number[],
    now: number,
  ): string[] {
    const [tenant, model, scheme] = scope as [string, string, string];
    const found: string[] = [];
    for (const replica of replicas) {
      let blocks = 0;
      let tokens = 0;
      for (const n of chain) {
        const entry = this.entries.get(entryKey(tenant, model, scheme, n, replica));
        if (entry === undefined || now - entry.confirmedAt > this.ttlMs) break;
        blocks++;
        tokens = entry.tokenCount;
      }
      if (blocks > 0) found.push(`${replica}:${blocks}:${tokens}`);
    }
    return found.sort();
  }

  /** Entries whose key starts with the given parts. */
  count(...parts: string[]): number {
    let n = 0;
    for (const key of this.entries.keys()) {
      const keyParts = key.split("|");
      if (parts.every((part, i) => part === "*" || keyParts[i] === part)) n++;
    }
    return n;
  }

  #oldest(): [string, ReferenceEntry] {
    let oldest: [string, ReferenceEntry] | undefined;
    for (const item of this.entries)
      if (oldest === undefined || item[1].order < oldest[1].order) oldest = item;
    return oldest as [string, ReferenceEntry];
  }
}
