import type { CacheIndex } from "../../src/core/cache-index.js";
import {
  type CacheIndexOptions,
  type ResolvedCacheIndexOptions,
  resolveCacheIndexOptions,
} from "../../src/core/cache-index-options.js";
import { freshnessAt, insertTopK } from "../../src/core/ranking.js";
import {
  assertValidBatch,
  assertValidStats,
  assertValidWriteScope,
  nameProblem,
  prefixHashProblem,
  problemError,
  replicaCapError,
  tokenCountOf,
} from "../../src/core/request-validation.js";
import {
  checkRouteQuery,
  copyStats,
  noHint,
  schemesPresentDetail,
} from "../../src/core/route-query-check.js";
import { ALL_TIERS, TierWeights, tierBit } from "../../src/core/tier-weights.js";
import {
  type CacheReport,
  type ChainStoredEvent,
  type DropCounts,
  type EventBatch,
  type EvictionCounts,
  emptyDropCounts,
  emptyEvictionCounts,
  type HashScheme,
  type IndexSize,
  MAX_SCHEMES_PER_REPLICA,
  type ModelId,
  type PrefixEntry,
  type PublishOutcome,
  type ReplicaHint,
  type ReplicaId,
  type ReplicaRef,
  type ReplicaStats,
  type ReportOutcome,
  type RouteAnswer,
  type RouteQuery,
  type ScopeQuery,
  type ScopeState,
  STORAGE_TIERS,
  type StorageTier,
  type SweepOutcome,
  type TenantId,
} from "../../src/core/types.js";
import { prefixKey } from "./prefix-key.js";

/** Everything under one (tenant, model): its replicas and its scheme tables. */
interface ModelScope {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly replicas: Map<ReplicaId, ReplicaRecord>;
  /** Only schemes holding at least one entry; emptied tables are deleted at once. */
  readonly schemes: Map<HashScheme, SchemeTable>;
}

/** The prefixes of one (tenant, model, scheme). */
interface SchemeTable {
  readonly name: HashScheme;
  readonly scope: ModelScope;
  /** prefixKey(hash) -> holders. Only prefixes with at least one holder. */
  readonly prefixes: Map<string, Map<ReplicaId, Holder>>;
  entries: number;
}

/** A replica known under one (tenant, model). */
interface ReplicaRecord {
  readonly id: ReplicaId;
  readonly scope: ModelScope;
  stats: ReplicaStats | undefined;
  lastSeenAt: number;
  /** Until when a live stream vouches for its entries (see keepAlive); -Infinity when never. */
  liveUntil: number;
  /** The reverse index: every entry this replica holds, so a clear costs O(its holdings). */
  readonly holdings: Set<Holder>;
  /** holdings per scheme table, for describe() with a scheme filter. */
  readonly holdingsByScheme: Map<SchemeTable, number>;
  /** Neighbours in the index-wide list ordered by lastSeenAt (oldest first). */
  quieter: ReplicaRecord | undefined;
  louder: ReplicaRecord | undefined;
}

/** One (prefix, replica) entry: a node of the index-wide list ordered by confirmation. */
interface Holder {
  readonly replica: ReplicaRecord;
  readonly table: SchemeTable;
  readonly key: string;
  tokenCount: number;
  confirmedAt: number;
  /** The tiers the block is held on (a TierMask); never 0 while the holder exists. */
  tiers: number;
  older: Holder | undefined;
  newer: Holder | undefined;
}

/** One replica's run while a lookup walks the chain. */
interface Run {
  readonly replicaId: ReplicaId;
  readonly stats: ReplicaStats | undefined;
  blocks: number;
  tokens: number;
  oldestConfirmedAt: number;
  /** The lowest weight over the run's blocks, each at its best tier, and that tier. */
  weight: number;
  tier: StorageTier;
  /** Set once the walk is over. */
  freshness: number;
  score: number;
}

/**
 * The v1 engine: nested `Map`s of per-entry objects. Simple and obviously correct, it is the
 * reference the contract suite pins down; it costs well over 150 bytes per holder entry.
 *
 * Two intrusive lists give every time-based operation its cost:
 * - holders ordered by `confirmedAt` (a confirmation moves a holder to the newest end), so TTL
 *   sweeps and cap evictions both take from the oldest end in O(1) each;
 * - replicas ordered by `lastSeenAt`, so silent replicas are found without scanning.
 * Both orders assume a monotonic clock.
 */
export function createMapCacheIndex(options: CacheIndexOptions): CacheIndex {
  return new MapCacheIndex(resolveCacheIndexOptions(options).options);
}

class MapCacheIndex implements CacheIndex {
  readonly #options: ResolvedCacheIndexOptions;
  readonly #tiers: TierWeights;
  readonly #tenants = new Map<TenantId, Map<ModelId, ModelScope>>();
  /** Oldest and newest confirmed holders; `#entries` counts the list. */
  #oldest: Holder | undefined;
  #newest: Holder | undefined;
  #entries = 0;
  /** Quietest and loudest replicas; `#replicaCount` counts the list. */
  #quietest: ReplicaRecord | undefined;
  #loudest: ReplicaRecord | undefined;
  #replicaCount = 0;

  constructor(options: ResolvedCacheIndexOptions) {
    this.#options = options;
    this.#tiers = new TierWeights(options.tierWeights);
  }

  report(report: CacheReport): ReportOutcome {
    assertValidWriteScope(report);
    assertValidStats("stats", report.stats);
    const now = this.#options.clock.now();
    const replica = this.#touchReplica(report.tenant, report.model, report.replicaId, now);
    if (report.stats !== undefined) replica.stats = copyStats(report.stats);
    const dropped = emptyDropCounts();
    const evicted = emptyEvictionCounts();
    const accepted = this.#add(
      replica,
      report.hashScheme,
      report.prefixes,
      now,
      dropped,
      evicted,
      tierBit("gpu"),
    );
    return { accepted, dropped, evicted };
  }

  publish(batch: EventBatch): PublishOutcome {
    assertValidBatch(batch);
    const now = this.#options.clock.now();
    const replica = this.#touchReplica(batch.tenant, batch.model, batch.replicaId, now);
    const dropped = emptyDropCounts();
    const evicted = emptyEvictionCounts();
    let applied = 0;
    let ignored = 0;
    let addedPrefixes = 0;
    for (const event of batch.events) {
      if (event.type === "unknown") {
        dropped["unknown-event-type"]++;
        ignored++;
        continue;
      }
      if (
        (event.type === "prefix-added" || event.type === "chain-stored") &&
        batch.hashScheme === ""
      ) {
        dropped["hash-scheme-missing"]++;
        ignored++;
        continue;
      }
      applied++;
      if (event.stats !== undefined) replica.stats = copyStats(event.stats);
      switch (event.type) {
        case "prefix-added":
          addedPrefixes += this.#add(
            replica,
            batch.hashScheme,
            event.prefixes,
            now,
            dropped,
            evicted,
            tierBit(event.tier ?? "gpu"),
          );
          break;
        case "chain-stored":
          addedPrefixes += this.#addChain(replica, batch.hashScheme, event, now, dropped, evicted);
          break;
        case "prefix-evicted":
          evicted.event += this.#evict(
            replica,
            batch.hashScheme,
            event.prefixes,
            dropped,
            event.tier === undefined ? ALL_TIERS : tierBit(event.tier),
          );
          break;
        case "all-cleared":
          evicted.cleared += this.#clear(
            replica,
            event.tier === undefined ? ALL_TIERS : tierBit(event.tier),
          );
          break;
        case "replica-updated":
          break;
      }
    }
    return { applied, ignored, addedPrefixes, dropped, evicted };
  }

  lookup(query: RouteQuery): RouteAnswer {
    const depth = checkRouteQuery(query, this.#options.maxChainLength);
    if (typeof depth !== "number") return depth;
    const { prefixHashes } = query;
    const truncated = depth < prefixHashes.length;

    const scope = this.#tenants.get(query.tenant)?.get(query.model);
    const table = scope?.schemes.get(query.hashScheme);
    if (scope === undefined || table === undefined) {
      const detail = schemesPresentDetail(scope === undefined ? [] : scope.schemes.keys());
      return noHint("no-hint", "", depth, truncated, detail);
    }

    const now = this.#options.clock.now();
    const liveSince = now - this.#options.ttlMs;
    const candidates =
      query.candidateReplicaIds.length === 0 ? undefined : new Set(query.candidateReplicaIds);
    const live = (holder: Holder) =>
      holder.confirmedAt >= liveSince || holder.replica.liveUntil >= now;
    const head = table.prefixes.get(prefixKey(prefixHashes[0] as Uint8Array));
    const runs: Run[] = [];
    if (head !== undefined) {
      for (const holder of head.values()) {
        if (!live(holder)) continue;
        if (candidates !== undefined && !candidates.has(holder.replica.id)) continue;
        runs.push({
          replicaId: holder.replica.id,
          stats: holder.replica.stats,
          blocks: 1,
          tokens: holder.tokenCount,
          oldestConfirmedAt: holder.confirmedAt,
          weight: this.#tiers.weightOf(holder.tiers),
          tier: this.#tiers.tierOf(holder.tiers),
          freshness: 0,
          score: 0,
        });
      }
    }
    // Extend every run while it keeps matching; a run ends at its replica's first miss, and the
    // walk ends when no run is left, so the cost follows the replicas still matching.
    const active = runs.slice();
    for (let d = 1; d < depth && active.length > 0; d++) {
      const holders = table.prefixes.get(prefixKey(prefixHashes[d] as Uint8Array));
      if (holders === undefined) break;
      let kept = 0;
      for (const run of active) {
        const holder = holders.get(run.replicaId);
        if (holder === undefined || !live(holder)) continue;
        run.blocks++;
        run.tokens = holder.tokenCount;
        if (holder.confirmedAt < run.oldestConfirmedAt) run.oldestConfirmedAt = holder.confirmedAt;
        // The weakest block's tier; of tiers that weigh alike, the later in STORAGE_TIERS.
        const weight = this.#tiers.weightOf(holder.tiers);
        const tier = this.#tiers.tierOf(holder.tiers);
        if (
          weight < run.weight ||
          (weight === run.weight && STORAGE_TIERS.indexOf(tier) > STORAGE_TIERS.indexOf(run.tier))
        ) {
          run.weight = weight;
          run.tier = tier;
        }
        active[kept++] = run;
      }
      active.length = kept;
    }

    if (runs.length === 0) return noHint("no-hint", "", depth, truncated, "");
    const limit =
      query.maxHints === 0
        ? this.#options.defaultMaxHints
        : Math.min(query.maxHints, this.#options.maxHintsLimit);
    const best: Run[] = [];
    for (const run of runs) {
      run.freshness = freshnessAt(now - run.oldestConfirmedAt, this.#options.ttlMs);
      run.score = run.tokens * run.freshness * run.weight;
      insertTopK(best, run, limit);
    }
    const hints: ReplicaHint[] = best.map((run) => ({
      replicaId: run.replicaId,
      matchedBlocks: run.blocks,
      matchedTokens: run.tokens,
      freshness: run.freshness,
      tier: run.tier,
      score: run.score,
      stats: run.stats,
    }));
    return {
      reason: "prefix-match",
      hints,
      invalidField: "",
      chainTruncated: truncated,
      evaluatedBlocks: depth,
      detail: "",
    };
  }

  describe(query: ScopeQuery): ScopeState {
    const invalid =
      nameProblem("tenant", query.tenant, true) ??
      nameProblem("model", query.model, true) ??
      nameProblem("hash_scheme", query.hashScheme ?? "", false);
    if (invalid) throw problemError(invalid);
    const scope = this.#tenants.get(query.tenant)?.get(query.model);
    if (scope === undefined) return { replicas: [], totalEntries: 0, hashSchemes: [] };
    const { hashScheme } = query;
    const tables =
      hashScheme === undefined
        ? [...scope.schemes.values()]
        : [scope.schemes.get(hashScheme)].filter((table) => table !== undefined);
    const prefixCount = (replica: ReplicaRecord) =>
      hashScheme === undefined
        ? replica.holdings.size
        : tables.reduce((sum, table) => sum + (replica.holdingsByScheme.get(table) ?? 0), 0);
    const replicas = [...scope.replicas.values()].map((replica) => ({
      replicaId: replica.id,
      stats: replica.stats,
      prefixCount: prefixCount(replica),
      lastSeenAt: replica.lastSeenAt,
    }));
    replicas.sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1));
    const hashSchemes = tables
      .map((table) => ({ hashScheme: table.name, entries: table.entries }))
      .sort((a, b) => (a.hashScheme < b.hashScheme ? -1 : 1));
    const totalEntries = hashSchemes.reduce((sum, s) => sum + s.entries, 0);
    return { replicas, totalEntries, hashSchemes };
  }

  keepAlive(ref: ReplicaRef, until: number): void {
    const replica = this.#tenants.get(ref.tenant)?.get(ref.model)?.replicas.get(ref.replicaId);
    if (replica !== undefined) replica.liveUntil = until;
  }

  sweep(budget: number): SweepOutcome {
    const now = this.#options.clock.now();
    const liveSince = now - this.#options.ttlMs;
    let expiredEntries = 0;
    let renewedEntries = 0;
    while (this.#oldest !== undefined && this.#oldest.confirmedAt < liveSince) {
      if (expiredEntries + renewedEntries >= budget) {
        return { expiredEntries, renewedEntries, removedReplicas: 0, done: false };
      }
      const oldest = this.#oldest;
      if (oldest.replica.liveUntil >= now) {
        oldest.confirmedAt = now;
        this.#moveToNewest(oldest);
        this.#markSeen(oldest.replica, now);
        renewedEntries++;
      } else {
        this.#unlinkHolder(oldest);
        expiredEntries++;
      }
    }
    // Every entry a replica holds was confirmed no later than the replica was last seen, so once
    // no expired entry is left, a replica silent past the TTL holds nothing.
    let removedReplicas = 0;
    while (
      this.#quietest !== undefined &&
      this.#quietest.lastSeenAt < liveSince &&
      this.#quietest.holdings.size === 0
    ) {
      if (expiredEntries + renewedEntries + removedReplicas >= budget) {
        return { expiredEntries, renewedEntries, removedReplicas, done: false };
      }
      this.#removeReplica(this.#quietest);
      removedReplicas++;
    }
    return { expiredEntries, renewedEntries, removedReplicas, done: true };
  }

  size(): IndexSize {
    const entriesByModel = new Map<ModelId, number>();
    for (const models of this.#tenants.values()) {
      for (const scope of models.values()) {
        let entries = 0;
        for (const table of scope.schemes.values()) entries += table.entries;
        if (entries > 0)
          entriesByModel.set(scope.model, (entriesByModel.get(scope.model) ?? 0) + entries);
      }
    }
    return { entries: this.#entries, entriesByModel, replicas: this.#replicaCount };
  }

  /** Adds or refreshes `prefixes` for `replica`; returns how many were accepted. */
  #add(
    replica: ReplicaRecord,
    scheme: HashScheme,
    prefixes: readonly PrefixEntry[],
    now: number,
    dropped: DropCounts,
    evicted: EvictionCounts,
    tier: number,
  ): number {
    if (scheme === "") {
      dropped["hash-scheme-missing"] += prefixes.length;
      return 0;
    }
    const known = replica.scope.schemes.get(scheme);
    const holdsUnder = known !== undefined && replica.holdingsByScheme.has(known);
    if (!holdsUnder && replica.holdingsByScheme.size >= MAX_SCHEMES_PER_REPLICA) {
      for (const prefix of prefixes) {
        dropped[prefixHashProblem(prefix.prefixHash) ?? "too-many-hash-schemes"]++;
      }
      return 0;
    }
    let accepted = 0;
    // Created with the first accepted prefix, so that a write of bad hashes leaves no empty table.
    let table: SchemeTable | undefined;
    // Deepest first, so that among entries confirmed at the same instant the cap evicts a chain's
    // tail before its head: an engine can reuse a head without its tail, never the reverse.
    for (let i = prefixes.length - 1; i >= 0; i--) {
      const prefix = prefixes[i] as PrefixEntry;
      const problem = prefixHashProblem(prefix.prefixHash);
      if (problem !== undefined) {
        dropped[problem]++;
        continue;
      }
      accepted++;
      table ??= this.#tableFor(replica.scope, scheme);
      const key = prefixKey(prefix.prefixHash);
      let holders = table.prefixes.get(key);
      if (holders === undefined) {
        holders = new Map();
        table.prefixes.set(key, holders);
      }
      // The count belongs to the block, as in the compact engine: the last known one, every holder.
      const reportedTokens = tokenCountOf(prefix.tokenCount);
      if (reportedTokens !== 0) {
        for (const other of holders.values()) other.tokenCount = reportedTokens;
      }
      const known = holders.get(replica.id);
      if (known !== undefined) {
        known.tiers |= tier;
        known.confirmedAt = now;
        this.#moveToNewest(known);
        continue;
      }
      while (this.#entries >= this.#options.maxEntries && this.#oldest !== undefined) {
        // An entry already past its TTL leaves for that reason, whether or not the sweeper got to
        // it yet: counting it as cap pressure would mislead whoever sizes the cap.
        const oldest = this.#oldest;
        if (oldest.confirmedAt < now - this.#options.ttlMs && oldest.replica.liveUntil < now) {
          evicted.ttl++;
        } else evicted.cap++;
        this.#unlinkHolder(this.#oldest);
      }
      // An unknown count takes the block's, as every other holder knows it.
      let tokenCount = reportedTokens;
      if (tokenCount === 0) tokenCount = holders.values().next().value?.tokenCount ?? 0;
      const holder: Holder = {
        replica,
        table,
        key,
        tokenCount,
        confirmedAt: now,
        tiers: tier,
        older: undefined,
        newer: undefined,
      };
      // The eviction above may have emptied and deleted this very prefix or table.
      if (!table.scope.schemes.has(scheme)) table.scope.schemes.set(scheme, table);
      if (!table.prefixes.has(key)) table.prefixes.set(key, holders);
      holders.set(replica.id, holder);
      table.entries++;
      replica.holdings.add(holder);
      replica.holdingsByScheme.set(table, (replica.holdingsByScheme.get(table) ?? 0) + 1);
      this.#appendNewest(holder);
      this.#entries++;
    }
    return accepted;
  }

  /** Removes `prefixes` from `replica` in `scheme`, or in every scheme when it is "". */
  #evict(
    replica: ReplicaRecord,
    scheme: HashScheme,
    prefixes: readonly PrefixEntry[],
    dropped: DropCounts,
    tiers: number,
  ): number {
    const tables =
      scheme === ""
        ? [...replica.holdingsByScheme.keys()]
        : [replica.scope.schemes.get(scheme)].filter((t) => t !== undefined);
    let removed = 0;
    for (const prefix of prefixes) {
      const problem = prefixHashProblem(prefix.prefixHash);
      if (problem !== undefined) {
        dropped[problem]++;
        continue;
      }
      const key = prefixKey(prefix.prefixHash);
      for (const table of tables) {
        const holder = table.prefixes.get(key)?.get(replica.id);
        if (holder !== undefined) {
          holder.tiers &= ~tiers;
          if (holder.tiers === 0) {
            this.#unlinkHolder(holder);
            removed++;
          }
        }
      }
    }
    return removed;
  }

  /** Removes `tiers` from everything `replica` holds. Cost: O(its holdings). */
  #clear(replica: ReplicaRecord, tiers: number): number {
    let removed = 0;
    for (const holder of [...replica.holdings]) {
      holder.tiers &= ~tiers;
      if (holder.tiers === 0) {
        this.#unlinkHolder(holder);
        removed++;
      }
    }
    return removed;
  }

  /** Adds a chain announced by parent (see ChainStoredEvent); returns how many were added. */
  #addChain(
    replica: ReplicaRecord,
    scheme: HashScheme,
    event: ChainStoredEvent,
    now: number,
    dropped: DropCounts,
    evicted: EvictionCounts,
  ): number {
    const table = replica.scope.schemes.get(scheme);
    const blockTokens = (hash: Uint8Array) => {
      let tokens = 0;
      for (const holder of table?.prefixes.get(prefixKey(hash))?.values() ?? []) {
        tokens = Math.max(tokens, holder.tokenCount);
      }
      return tokens;
    };
    let base = 0;
    if (event.parentHash !== undefined) {
      base = prefixHashProblem(event.parentHash) === undefined ? blockTokens(event.parentHash) : 0;
    }
    const known =
      !event.knownBlocksOnly && event.blockSize > 0 && (event.parentHash === undefined || base > 0);
    const prefixes: PrefixEntry[] = [];
    event.prefixHashes.forEach((prefixHash, i) => {
      if (
        event.knownBlocksOnly &&
        prefixHashProblem(prefixHash) === undefined &&
        table?.prefixes.has(prefixKey(prefixHash)) !== true
      ) {
        dropped["unknown-block"]++;
        return;
      }
      prefixes.push({ prefixHash, tokenCount: known ? base + (i + 1) * event.blockSize : 0 });
    });
    return this.#add(
      replica,
      scheme,
      prefixes,
      now,
      dropped,
      evicted,
      tierBit(event.tier ?? "gpu"),
    );
  }

  /** Finds or creates the replica and marks it heard from now. */
  #touchReplica(tenant: TenantId, model: ModelId, id: ReplicaId, now: number): ReplicaRecord {
    // Checked before anything is made, so that a refused write leaves no scope behind.
    const { maxReplicas } = this.#options;
    if (
      this.#replicaCount >= maxReplicas &&
      this.#tenants.get(tenant)?.get(model)?.replicas.get(id) === undefined
    ) {
      throw replicaCapError(maxReplicas);
    }
    let models = this.#tenants.get(tenant);
    if (models === undefined) {
      models = new Map();
      this.#tenants.set(tenant, models);
    }
    let scope = models.get(model);
    if (scope === undefined) {
      scope = { tenant, model, replicas: new Map(), schemes: new Map() };
      models.set(model, scope);
    }
    let replica = scope.replicas.get(id);
    if (replica === undefined) {
      replica = {
        id,
        scope,
        stats: undefined,
        lastSeenAt: now,
        liveUntil: Number.NEGATIVE_INFINITY,
        holdings: new Set(),
        holdingsByScheme: new Map(),
        quieter: undefined,
        louder: undefined,
      };
      scope.replicas.set(id, replica);
      this.#replicaCount++;
      this.#appendLoudest(replica);
    } else {
      this.#markSeen(replica, now);
    }
    return replica;
  }

  /** Marks a known replica heard from at `now`: it moves to the loud end of the replica order. */
  #markSeen(replica: ReplicaRecord, now: number): void {
    replica.lastSeenAt = now;
    this.#detachReplica(replica);
    this.#appendLoudest(replica);
  }

  #appendLoudest(replica: ReplicaRecord): void {
    replica.quieter = this.#loudest;
    if (this.#loudest === undefined) this.#quietest = replica;
    else this.#loudest.louder = replica;
    this.#loudest = replica;
  }

  #tableFor(scope: ModelScope, scheme: HashScheme): SchemeTable {
    let table = scope.schemes.get(scheme);
    if (table === undefined) {
      table = { name: scheme, scope, prefixes: new Map(), entries: 0 };
      scope.schemes.set(scheme, table);
    }
    return table;
  }

  /** Removes a holder from every structure, deleting whatever it leaves empty. */
  #unlinkHolder(holder: Holder): void {
    const { table, replica, key } = holder;
    const holders = table.prefixes.get(key);
    holders?.delete(replica.id);
    if (holders !== undefined && holders.size === 0) table.prefixes.delete(key);
    table.entries--;
    if (table.entries === 0) table.scope.schemes.delete(table.name);
    replica.holdings.delete(holder);
    const inScheme = (replica.holdingsByScheme.get(table) ?? 1) - 1;
    if (inScheme === 0) replica.holdingsByScheme.delete(table);
    else replica.holdingsByScheme.set(table, inScheme);
    this.#detachHolder(holder);
    this.#entries--;
  }

  #removeReplica(replica: ReplicaRecord): void {
    this.#detachReplica(replica);
    this.#replicaCount--;
    const { scope } = replica;
    scope.replicas.delete(replica.id);
    if (scope.replicas.size === 0 && scope.schemes.size === 0) {
      const models = this.#tenants.get(scope.tenant);
      models?.delete(scope.model);
      if (models !== undefined && models.size === 0) this.#tenants.delete(scope.tenant);
    }
  }

  #appendNewest(holder: Holder): void {
    holder.older = this.#newest;
    holder.newer = undefined;
    if (this.#newest === undefined) this.#oldest = holder;
    else this.#newest.newer = holder;
    this.#newest = holder;
  }

  #moveToNewest(holder: Holder): void {
    if (this.#newest === holder) return;
    this.#detachHolder(holder);
    this.#appendNewest(holder);
  }

  #detachHolder(holder: Holder): void {
    if (holder.older === undefined) this.#oldest = holder.newer;
    else holder.older.newer = holder.newer;
    if (holder.newer === undefined) this.#newest = holder.older;
    else holder.newer.older = holder.older;
    holder.older = undefined;
    holder.newer = undefined;
  }

  #detachReplica(replica: ReplicaRecord): void {
    if (replica.quieter === undefined) this.#quietest = replica.louder;
    else replica.quieter.louder = replica.louder;
    if (replica.louder === undefined) this.#loudest = replica.quieter;
    else replica.louder.quieter = replica.quieter;
    replica.quieter = undefined;
    replica.louder = undefined;
  }
}
