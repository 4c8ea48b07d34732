import { BlockStore, CHAIN_WINDOWS, MAX_BLOCKS, NIL } from "./block-store.js";
import type { CacheIndex } from "./cache-index.js";
import {
  type CacheIndexOptions,
  type ResolvedCacheIndexOptions,
  resolveCacheIndexOptions,
} from "./cache-index-options.js";
import { CHUNK_BITS, HolderSlab } from "./holder-slab.js";
import { PagedRecords } from "./paged-records.js";
import { prefixFingerprint } from "./prefix-fingerprint.js";
import { freshnessAt, loadOf } from "./ranking.js";
import {
  assertValidBatch,
  assertValidStats,
  assertValidWriteScope,
  nameProblem,
  prefixHashProblem,
  problemError,
  replicaCapError,
  tokenCountOf,
} from "./request-validation.js";
import { checkRouteQuery, copyStats, noHint, schemesPresentDetail } from "./route-query-check.js";
import { ALL_TIERS, TIER_COUNT, TierWeights, tierBit } from "./tier-weights.js";
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
  type StorageTier,
  type SweepOutcome,
  type TenantId,
} from "./types.js";

/** Everything under one (tenant, model): its replicas and its schemes. */
interface ModelScope {
  readonly tenant: TenantId;
  readonly model: ModelId;
  readonly replicas: Map<ReplicaId, ReplicaRecord>;
  readonly schemes: Map<HashScheme, SchemeScope>;
  /** Its replicas by id, their `order` increasing (see placeById). */
  readonly byId: ReplicaRecord[];
}

/** One (tenant, model, scheme): blocks are keyed by its id. Lives as long as its ModelScope. */
interface SchemeScope {
  readonly id: number;
  readonly name: HashScheme;
  readonly scope: ModelScope;
  entries: number;
  /** Replicas' groups under it; at 0 it holds nothing and is released (see #releaseGroup). */
  groups: number;
  /**
   * Its groups in tie order (lower load, then replica id: `winsTie`). A lookup whose hints tie
   * with many holders of a block reads the winners from here (see #resolveTies).
   */
  readonly byRank: HolderGroup[];
}

/** A replica known under one (tenant, model). */
interface ReplicaRecord {
  readonly id: ReplicaId;
  readonly scope: ModelScope;
  stats: ReplicaStats | undefined;
  /** What ties are broken on: its stats' running plus waiting requests; 0 without stats. */
  load: number;
  /**
   * Its place by id among its scope's replicas, as a number: a tie on load is broken on ids, and
   * comparing two numbers costs a lookup that meets thousands of tied holders far less than
   * comparing two strings.
   */
  order: number;
  lastSeenAt: number;
  /** Until when a live stream vouches for its entries (see keepAlive); -Infinity when never. */
  liveUntil: number;
  /** Holder entries over all its groups. */
  holdings: number;
  readonly groups: Map<HashScheme, HolderGroup>;
  quieter: ReplicaRecord | undefined;
  louder: ReplicaRecord | undefined;
}

/** A replica's holders under one scheme: the owner of holder slab chunks. */
interface HolderGroup {
  readonly id: number;
  readonly replica: ReplicaRecord;
  readonly scheme: SchemeScope;
  count: number;
  /**
   * Every tier any of its holders has been on (bits, see tierBit): a superset of what they are on
   * now, so that a clear naming only other tiers need not read its holdings.
   */
  tiersEver: number;
  /** This group's holder of each hot block it holds; undefined until it holds one. */
  hotByBlock: Map<number, number> | undefined;
  /**
   * The previous holder in its block's list of each of this group's holders of hot blocks: a hot
   * block's list is long, and unlinking a holder must not walk it. A head's entry is not kept up
   * to date (a head's predecessor is never read).
   */
  hotPrev: Map<number, number> | undefined;
}

/** The compact engine: a {@link CacheIndex}, and what its tests and benchmarks inspect of it. */
export interface CompactIndexEngine extends CacheIndex {
  /** Bytes of every typed array the index holds; the JS objects (replicas, scopes) are not counted. */
  readonly arrayBytes: number;
  /** Holder slots that clears naming a tier have examined since the index was made: their cost. */
  readonly tierClearVisits: number;
  /**
   * Levels of lookups whose tie with the k-th best hint the tie order settled before the block's
   * list ended (see #resolveTies), since the index was made.
   */
  readonly tiesSettledInOrder: number;
  /**
   * What is inconsistent in the index's bookkeeping, as sentences; empty when nothing is. Answers
   * can stay right while it drifts (a stale count only changes which path a membership test
   * takes), so the property tests run this after every operation. Cost: O(holders); for tests and
   * debugging.
   */
  consistencyProblems(): string[];
}

/**
 * Internal thresholds of {@link createCompactCacheIndex} (any left out take their defaults); tests
 * lower them to exercise every path.
 */
export interface CompactIndexTuning {
  /**
   * A block becomes hot (its holders indexed per replica) when it reaches this many holders.
   * @default 32
   */
  readonly hotPromote: number;
  /**
   * A hot block goes back to list walks below this many holders.
   * @default 8
   */
  readonly hotDemote: number;
  /**
   * A lookup that has met `t` holders of a hot block tied with its k-th best hint also reads the
   * block's possible winners in tie order (see #resolveTies) once `t * t` reaches this times its
   * hints limit times the replicas under the scheme: the point where that order, which finds about
   * one tied holder in (replicas / tied holders), is likely the cheaper way to the winners.
   * @default 2
   */
  readonly tieRunScale: number;
}

/** Steps in tie order without a tied holder after which #resolveTies takes them half as often. */
const TIE_MISSES = 8;
const DEFAULT_TUNING: CompactIndexTuning = { hotPromote: 32, hotDemote: 8, tieRunScale: 2 };
const GPU = tierBit("gpu");
const NO_GROUPS: readonly HolderGroup[] = [];
/**
 * Fields of a holder record. CONFIRMED holds the confirmation in ticks (see CompactCacheIndex.#tick)
 * in its low 28 bits and the holder's tiers (a TierMask, never 0) in its top 4.
 */
const CONFIRMED = 0;
const TICK_MASK = 0x0fffffff;
const TIER_SHIFT = 28;
/** The index-wide list by confirmation. */
const LRU_OLDER = 1;
const LRU_NEWER = 2;
/** The block the holder belongs to; NIL in a slot no holder uses. */
const BLOCK = 3;
/** The block's list, newest first (singly linked: see #unlinkFromBlock). */
const BLOCK_NEXT = 4;
/** A holder's predecessor in its block's list not known to the caller: unlinking finds it. */
const PREV_UNKNOWN = -1;
const HOLDER_FIELDS = 5;
/**
 * Ticks are whole ms since `#base`; rebased before they outgrow 28 bits (every ~37 hours). What a
 * rebase keeps must exceed the longest TTL (MAX_TTL_MS, one day).
 */
const REBASE_AT = 2 ** 28;
const KEEP_AFTER_REBASE = 2 ** 27;

/**
 * The fleet-scale engine: holders and blocks live in flat typed arrays, with no JS object per entry.
 *
 * A holder (one (block, replica) pair) is 20 bytes: its confirmation tick and tiers, its block,
 * and three links. Its replica is the owner of the 32-slot chunk it sits in ({@link HolderSlab}).
 * Two intrusive lists order every holder:
 * - index-wide by confirmation (`lruOlder`/`lruNewer`): sweeps and the cap take the oldest in O(1);
 * - per block by confirmation, newest first (`blockNext`, singly linked): a lookup reads the
 *   freshest holders of a block first and stops as soon as the rest cannot enter the top hints. To
 *   unlink a holder, a cold block's short list is walked for its predecessor; a hot block keeps
 *   each holder's predecessor in its replica's map.
 * A block (20 bytes plus a table slot, {@link BlockStore}) holds the list head and the token count.
 *
 * Lookups search deepest first. The chain's blocks are resolved once; then, from the deepest level
 * that exists, each new replica seen is evaluated once (its consecutive run from the head, by
 * membership probes), and the search stops when the k-th best score beats every score a replica not
 * yet evaluated could reach. A block held by thousands of replicas (the system prompt every request
 * starts with) is therefore read only until its freshest holders fill the hints, not in full;
 * when thousands of them tie (confirmed in one millisecond, or renewed by one sweep), the tie's
 * winners are also read from the scheme's replicas in tie order (lower load, then id).
 * A write stores a chain's new blocks for a replica in consecutive slots, so the replica's holder
 * of a chain's next block is first looked for beside its holder of the previous one (one read of
 * the slot's block). Failing that, membership of a replica in a block with many holders ("hot") is
 * a per-replica map lookup; in any other block, a walk of its short list.
 *
 * Clock assumptions: monotonic, as for the v1 engine; ticks are whole milliseconds.
 */
export function createCompactCacheIndex(
  options: CacheIndexOptions,
  tuning: Partial<CompactIndexTuning> = {},
): CompactIndexEngine {
  return new CompactCacheIndex(resolveCacheIndexOptions(options).options, {
    ...DEFAULT_TUNING,
    ...tuning,
  });
}

class CompactCacheIndex implements CompactIndexEngine {
  readonly #options: ResolvedCacheIndexOptions;
  readonly #tuning: CompactIndexTuning;
  readonly #tiers: TierWeights;
  /** The latest keepAlive deadline given to any replica: past it, no replica is kept alive. */
  #liveUntilMax = Number.NEGATIVE_INFINITY;
  /** The cap, at most {@link MAX_BLOCKS}: blocks never outnumber entries, so the store never fills. */
  readonly #maxEntries: number;
  readonly #tenants = new Map<TenantId, Map<ModelId, ModelScope>>();
  readonly #schemeScopes: (SchemeScope | undefined)[] = [];
  readonly #freeSchemeIds: number[] = [];
  readonly #groups: (HolderGroup | undefined)[] = [];
  readonly #freeGroupIds: number[] = [];
  /** Groups whose last holder was removed since the last write or sweep ended (see #releaseEmptied). */
  readonly #emptied: HolderGroup[] = [];

  readonly #blocks = new BlockStore();
  readonly #slab = new HolderSlab();
  /** One record per holder slot: see CONFIRMED and the other field indexes. */
  readonly #holders = new PagedRecords(HOLDER_FIELDS);
  /** Slots the holder arrays have room for. */
  #holderSlots = 0;
  /** Holders of each hot block. */
  readonly #hotCounts = new Map<number, number>();

  /** Oldest and newest confirmed holders; `#entries` counts the list. */
  #oldest = NIL;
  #newest = NIL;
  #entries = 0;
  #quietest: ReplicaRecord | undefined;
  #loudest: ReplicaRecord | undefined;
  #replicaCount = 0;
  /** Clock reading of tick 0. */
  #base: number;

  /** Lookup scratch: resolved chain blocks, best tokens up to each depth, per-group stamps. */
  #chain: Uint32Array;
  #maxTokens: Float64Array;
  #evaluated = new Uint32Array(64);
  readonly #best = new TopCandidates();
  #allowed = new Uint32Array(64);
  /** Lookup scratch: the groups of a lookup's candidates, each once. */
  readonly #candidateGroups: number[] = [];
  #stamp = 0;
  #tiesSettledInOrder = 0;
  /**
   * The lookup in progress, set once by lookup for its helpers: its clock reading, that reading in
   * ticks, the oldest tick still within the TTL, and whether any replica is kept alive past it.
   */
  #lookupNow = 0;
  #lookupTick = 0;
  #liveSince = 0;
  #anyLive = false;
  /** Holders seen by the last cold membership walk, for promotion. */
  #walked = 0;
  /**
   * The holder before the one the last cold membership walk found (NIL for the head), so that
   * unlinking it does not walk the list again; PREV_UNKNOWN after a hot block's look-up.
   */
  #walkedPrev = PREV_UNKNOWN;
  readonly #fingerprint = new Uint32Array(2);
  /** The fingerprints of a batch or a looked-up chain, high and low halves interleaved. */
  #keys = new Uint32Array(128);
  /**
   * What lookups with `reuse` hand back and overwrite (see CacheIndex.lookup): the answer, its
   * list, and a hint per rank, made as first needed (at most the hint limit's).
   */
  readonly #reused = newAnswer();
  readonly #reusedHints: Writable<ReplicaHint>[] = [];
  /**
   * A batch's record for its clears that name a tier (see #clearTiers): once it has cleared any
   * tier, every holder it gives a tier is logged, and a tier cleared again needs only the holders
   * logged since. Emptied when a batch starts; written to only during one (`#logging`).
   */
  #tierLog = new Uint32Array(64);
  #tierLogLength = 0;
  #logging = false;
  /** Per tier: where in #tierLog the batch last cleared it from, or -1 when it has not yet. */
  readonly #clearedFrom = new Int32Array(TIER_COUNT);
  #tierClearVisits = 0;

  constructor(options: ResolvedCacheIndexOptions, tuning: CompactIndexTuning) {
    this.#options = options;
    this.#tuning = tuning;
    this.#tiers = new TierWeights(options.tierWeights);
    this.#maxEntries = Math.min(options.maxEntries, MAX_BLOCKS);
    this.#base = options.clock.now();
    this.#chain = new Uint32Array(options.maxChainLength);
    this.#maxTokens = new Float64Array(options.maxChainLength);
  }

  report(report: CacheReport): ReportOutcome {
    const outcome = this.#report(report);
    this.#releaseEmptied();
    return outcome;
  }

  #report(report: CacheReport): ReportOutcome {
    assertValidWriteScope(report);
    assertValidStats("stats", report.stats);
    const now = this.#options.clock.now();
    const tick = this.#tick(now);
    const replica = this.#touchReplica(report.tenant, report.model, report.replicaId, now);
    if (report.stats !== undefined) this.#setStats(replica, report.stats);
    const dropped = emptyDropCounts();
    const evicted = emptyEvictionCounts();
    const accepted = this.#add(
      replica,
      report.hashScheme,
      report.prefixes,
      tick,
      dropped,
      evicted,
      GPU,
    );
    return { accepted, dropped, evicted };
  }

  publish(batch: EventBatch): PublishOutcome {
    this.#tierLogLength = 0;
    this.#clearedFrom.fill(-1);
    try {
      return this.#publish(batch);
    } finally {
      this.#logging = false;
      this.#releaseEmptied();
    }
  }

  #publish(batch: EventBatch): PublishOutcome {
    assertValidBatch(batch);
    const now = this.#options.clock.now();
    const tick = this.#tick(now);
    const replica = this.#touchReplica(batch.tenant, batch.model, batch.replicaId, now);
    const dropped = emptyDropCounts();
    const evicted = emptyEvictionCounts();
    let applied = 0;
    let ignored = 0;
    let addedPrefixes = 0;
    // Only the batch's last stats can be seen (no lookup runs inside a batch): applied once, at the
    // end, so that a batch whose events swing the load back and forth costs one move in tie order.
    let stats: ReplicaStats | undefined;
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
      if (event.stats !== undefined) stats = event.stats;
      switch (event.type) {
        case "prefix-added":
          addedPrefixes += this.#add(
            replica,
            batch.hashScheme,
            event.prefixes,
            tick,
            dropped,
            evicted,
            event.tier === undefined ? GPU : tierBit(event.tier),
          );
          break;
        case "chain-stored":
          addedPrefixes += this.#addChain(replica, batch.hashScheme, event, tick, dropped, evicted);
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
          evicted.cleared +=
            event.tier === undefined
              ? this.#clear(replica)
              : this.#clearTiers(replica, tierBit(event.tier));
          break;
        case "replica-updated":
          break;
      }
    }
    if (stats !== undefined) this.#setStats(replica, stats);
    return { applied, ignored, addedPrefixes, dropped, evicted };
  }

  lookup(query: RouteQuery, reuse = false): RouteAnswer {
    const depth = checkRouteQuery(query, this.#options.maxChainLength);
    if (typeof depth !== "number") return depth;
    const { prefixHashes } = query;
    const truncated = depth < prefixHashes.length;

    const scope = this.#tenants.get(query.tenant)?.get(query.model);
    const scheme = scope?.schemes.get(query.hashScheme);
    if (scope === undefined || scheme === undefined || scheme.entries === 0) {
      const detail = schemesPresentDetail(scope === undefined ? [] : schemesWithEntries(scope));
      return noHint("no-hint", "", depth, truncated, detail);
    }

    const stamp = this.#nextStamp();
    const filtered = query.candidateReplicaIds.length > 0;
    const candidateGroups = this.#candidateGroups;
    candidateGroups.length = 0;
    if (filtered) {
      for (const id of query.candidateReplicaIds) {
        const group = scope.replicas.get(id)?.groups.get(scheme.name);
        if (group !== undefined && this.#allowed[group.id] !== stamp) {
          this.#allowed[group.id] = stamp;
          candidateGroups.push(group.id);
        }
      }
      if (candidateGroups.length === 0) return noHint("no-hint", "", depth, truncated, "");
    }

    // Resolve the chain once, window by window (see CHAIN_WINDOWS): no replica's run can pass the
    // first block nobody holds, and a chain that stops early is not fingerprinted to its end.
    const chain = this.#chain;
    const maxTokens = this.#maxTokens;
    const blocks = this.#blocks;
    const keys = this.#keys.length >= 2 * depth ? this.#keys : this.#growKeys(depth);
    let resolved = 0;
    for (
      let size: number = CHAIN_WINDOWS.first;
      resolved < depth;
      size = Math.min(2 * size, CHAIN_WINDOWS.max)
    ) {
      const start = resolved;
      const end = Math.min(depth, start + size);
      for (let i = start; i < end; i++) {
        prefixFingerprint(prefixHashes[i] as Uint8Array, keys, 2 * i);
      }
      resolved = blocks.findChain(scheme.id, keys, start, end, chain);
      if (resolved < end) break;
    }
    // Only the blocks' token counts are read here. Reading each level's newest holder too, ahead
    // of the search, was no faster in process and cost about 0.35 µs a lookup in a loaded server.
    let tokensSoFar = 0;
    for (let level = 0; level < resolved; level++) {
      const tokens = blocks.tokenCountOf(chain[level] as number);
      if (tokens > tokensSoFar) tokensSoFar = tokens;
      maxTokens[level] = tokensSoFar;
    }

    const now = this.#options.clock.now();
    this.#lookupNow = now;
    this.#lookupTick = this.#expiryTick(now);
    this.#liveSince = this.#lookupTick - this.#options.ttlMs;
    // Past its TTL, an entry still counts while its replica is kept alive (keepAlive).
    this.#anyLive = this.#liveUntilMax >= now;
    const asked =
      query.maxHints === 0
        ? this.#options.defaultMaxHints
        : Math.min(query.maxHints, this.#options.maxHintsLimit);
    // With candidates, an answer holds at most one hint per candidate holding the head block (live
    // or not): the limit drops to that, so that the search stops on its bound once they are found,
    // instead of reading every holder of every level (the whole fleet's, for a head all hold).
    let limit = asked;
    if (filtered && resolved > 0) {
      const holdingHead = this.#candidatesHolding(chain[0] as number, stamp, asked);
      if (holdingHead === 0) return noHint("no-hint", "", depth, truncated, "");
      limit = holdingHead;
    }
    const best = this.#best;
    best.reset(limit);
    this.#search(resolved, limit, stamp, filtered, scheme.byRank);

    if (best.count === 0) return noHint("no-hint", "", depth, truncated, "");
    const answer = reuse ? this.#reused : newAnswer();
    answer.chainTruncated = truncated;
    answer.evaluatedBlocks = depth;
    const hints = answer.hints;
    for (let i = 0; i < best.count; i++) {
      const c = best.at(i);
      const replica = c.replica as ReplicaRecord;
      const hint = reuse ? this.#reusedHint(i) : blankHint();
      hint.replicaId = replica.id;
      hint.matchedBlocks = c.blocks;
      hint.matchedTokens = c.tokens;
      hint.freshness = c.freshness;
      hint.tier = c.tier;
      hint.score = c.score;
      hint.stats = replica.stats;
      hints[i] = hint;
    }
    // Filled in order, so the list stays packed; a reused one may have held more.
    hints.length = best.count;
    best.release();
    return answer;
  }

  /**
   * How many of a lookup's candidates (marked with `stamp` in #allowed, listed in #candidateGroups)
   * hold `block`, counted up to `enough`. A hot block is asked of each candidate's hot map; a cold
   * one's list, short by definition, is read once. Cost: O(min(candidates, enough)) or O(list).
   */
  #candidatesHolding(block: number, stamp: number, enough: number): number {
    let holding = 0;
    if (this.#blocks.isHot(block)) {
      for (const group of this.#candidateGroups) {
        if ((this.#groups[group] as HolderGroup).hotByBlock?.has(block) && ++holding === enough) {
          break;
        }
      }
      return holding;
    }
    for (
      let holder = this.#blocks.headOf(block);
      holder !== NIL && holding < enough;
      holder = this.#holders.get(holder, BLOCK_NEXT)
    ) {
      if (this.#allowed[this.#slab.owner(holder)] === stamp) holding++;
    }
    return holding;
  }

  /**
   * A lookup's search of its `resolved` levels (see the class comment), into #best, which was reset
   * to `limit`. A method apart from lookup, and too large for V8 to inline into it, so that it has
   * its own inlining budget: the helpers it calls for every holder it visits are inlined, and none
   * of them returns a number boxed into a heap object. Reads the chain and its bounds that lookup
   * wrote (#chain, #maxTokens) and its clock reading (#lookupNow and what derives from it).
   * `ranked` is the scheme's groups in tie order.
   */
  #search(
    resolved: number,
    limit: number,
    stamp: number,
    filtered: boolean,
    ranked: readonly HolderGroup[],
  ): void {
    const now = this.#lookupNow;
    const nowTick = this.#lookupTick;
    const chain = this.#chain;
    const maxTokens = this.#maxTokens;
    const blocks = this.#blocks;
    const ttl = this.#options.ttlMs;
    const liveSince = this.#liveSince;
    const anyLive = this.#anyLive;
    const maxWeight = this.#tiers.max;
    const best = this.#best;
    const evaluated = this.#evaluated;
    const tieThreshold = this.#tuning.tieRunScale * limit * ranked.length;
    // Deepest level first. Before a level: every replica not yet evaluated either cannot beat the
    // k-th best or has a run ending at or above this level, so scores at most maxTokens[level]
    // (times the best tier weight).
    for (let level = resolved - 1; level >= 0; level--) {
      const tokensBound = maxTokens[level] as number;
      const levelBound = tokensBound * maxWeight;
      const kthAtLevel = best.kth;
      if (kthAtLevel !== undefined && kthAtLevel.score > levelBound) break;
      // Reaching the head block with the hints not yet full, every deeper level was read in full:
      // a replica not yet evaluated holds no deeper block of the chain, so its run is the head.
      const runLimit = level === 0 && best.count < limit ? 1 : resolved;
      const block = chain[level] as number;
      let ties = 0;
      for (
        let holder = blocks.headOf(block);
        holder !== NIL;
        holder = this.#holders.get(holder, BLOCK_NEXT)
      ) {
        const confirmed = this.#holders.get(holder, CONFIRMED) & TICK_MASK;
        const kth = best.kth;
        // If its run includes this level, the most this replica can score; a run that stops above
        // scores at most the bound met at its last block.
        let bound = Number.POSITIVE_INFINITY;
        if (kth !== undefined) {
          // Multiplied in a score's order, so that a run scoring exactly this rounds alike.
          bound = tokensBound * freshnessAt(nowTick - confirmed, ttl) * maxWeight;
          // Every later holder of this level is older; those whose run includes this level score
          // below the k-th best, and those whose run stops above it are met at that level.
          if (kth.score > bound) break;
          // A long run of holders tied with the k-th best (confirmed in the same millisecond, say):
          // only those that win the tie can enter, and the tie order finds them without reading
          // the whole run.
          if (kth.score === bound && ++ties * ties >= tieThreshold && blocks.isHot(block)) {
            this.#resolveTies(level, block, holder, runLimit, stamp, filtered, ranked);
            break;
          }
        }
        const group = this.#slab.owner(holder);
        if (confirmed < liveSince) {
          // Newest first: the rest of this list is expired too, unless kept alive.
          if (!anyLive) break;
          if ((this.#groups[group] as HolderGroup).replica.liveUntil < now) continue;
        }
        if (evaluated[group] === stamp) continue;
        // At best a tie with the k-th best (say, replicas confirmed in the same millisecond): only
        // a replica that wins the tie is worth evaluating. One that loses is left unmarked, so
        // that it is met again where a run stopping above this level ends.
        if (
          kth !== undefined &&
          kth.score === bound &&
          !winsTie((this.#groups[group] as HolderGroup).replica, kth.replica as ReplicaRecord)
        ) {
          continue;
        }
        evaluated[group] = stamp;
        if (filtered && this.#allowed[group] !== stamp) continue;
        const spare = best.spare;
        if (this.#evaluate(spare, group, runLimit, level, holder)) {
          best.offerSpare();
        }
      }
    }
  }

  /**
   * Finishes #search's reading of hot `block` at `level` from `from`, its list's first holder not
   * yet read, where that holder ties with the k-th best (the hints are full). A holder can enter
   * only by winning the tie: its bound equals the k-th best's score and it ranks before that
   * replica in `winsTie` order. Two readings go in step, and whichever ends first has found every
   * such holder:
   * - the block's list, as #search reads it: it ends at a holder whose bound is below the k-th
   *   best's score (every later one is older);
   * - `ranked`, the scheme's groups in tie order, each one's holder of the block (its hot map)
   *   taken if tied: it ends at the first group that does not win the tie with the k-th best,
   *   which no later group does either.
   * When most of a block's holders tie, the tie order meets a winner at nearly every step, and a
   * tie among thousands ends within a few steps more than the hints. When the winners sit far down
   * the tie order, its steps are taken ever less often (see TIE_MISSES), so they add a few dozen
   * to the list's; they never outnumber the list's steps. Every holder taken is
   * evaluated as #search does, and any evaluation is a true score: reading both orders changes
   * what is read, not the answer.
   */
  #resolveTies(
    level: number,
    block: number,
    from: number,
    runLimit: number,
    stamp: number,
    filtered: boolean,
    ranked: readonly HolderGroup[],
  ): void {
    const nowTick = this.#lookupTick;
    const ttl = this.#options.ttlMs;
    const liveSince = this.#liveSince;
    const anyLive = this.#anyLive;
    const tokensBound = this.#maxTokens[level] as number;
    const maxWeight = this.#tiers.max;
    const best = this.#best;
    const evaluated = this.#evaluated;
    const tie = (best.kth as Candidate).score;
    let holder = from;
    let rank = 0;
    // List steps per step in tie order, doubled after each TIE_MISSES steps in tie order that find
    // no tied holder: where the winners sit far down the tie order, reading it costs a few dozen
    // steps, not as many as the list.
    let stride = 1;
    let sinceRankStep = 0;
    let misses = 0;
    for (;;) {
      if (holder === NIL) return;
      const confirmed = this.#holders.get(holder, CONFIRMED) & TICK_MASK;
      const bound = tokensBound * freshnessAt(nowTick - confirmed, ttl) * maxWeight;
      if ((best.kth as Candidate).score > bound) return;
      if (confirmed < liveSince && !anyLive) return;
      const group = this.#slab.owner(holder);
      if (evaluated[group] !== stamp) {
        const expired = confirmed < liveSince;
        const tied = (best.kth as Candidate).score === bound;
        this.#offerTied(group, holder, expired, tied, level, runLimit, stamp, filtered);
      }
      holder = this.#holders.get(holder, BLOCK_NEXT);
      if (++sinceRankStep < stride) continue;
      sinceRankStep = 0;

      const next = ranked[rank++];
      const kth = best.kth as Candidate;
      if (
        next === undefined ||
        kth.score > tie ||
        !winsTie(next.replica, kth.replica as ReplicaRecord)
      ) {
        this.#tiesSettledInOrder++;
        return;
      }
      if (evaluated[next.id] === stamp) continue;
      const held = next.hotByBlock?.get(block) ?? NIL;
      const heldConfirmed = held === NIL ? 0 : this.#holders.get(held, CONFIRMED) & TICK_MASK;
      if (
        held === NIL ||
        tokensBound * freshnessAt(nowTick - heldConfirmed, ttl) * maxWeight !== tie
      ) {
        if (++misses === TIE_MISSES) {
          stride *= 2;
          misses = 0;
        }
        continue;
      }
      misses = 0;
      const heldExpired = heldConfirmed < liveSince;
      this.#offerTied(next.id, held, heldExpired, true, level, runLimit, stamp, filtered);
    }
  }

  /**
   * Evaluates `holder` of `group` (at `level`; `tied` when its bound is the k-th best's score) for
   * #resolveTies, if #search would: live (or kept alive), its replica not yet evaluated, not
   * losing a tie with the k-th best, and among the candidates when the lookup names some.
   */
  #offerTied(
    group: number,
    holder: number,
    expired: boolean,
    tied: boolean,
    level: number,
    runLimit: number,
    stamp: number,
    filtered: boolean,
  ): void {
    const replica = (this.#groups[group] as HolderGroup).replica;
    if (expired && replica.liveUntil < this.#lookupNow) return;
    if (this.#evaluated[group] === stamp) return;
    const best = this.#best;
    const kth = best.kth as Candidate;
    if (tied && !winsTie(replica, kth.replica as ReplicaRecord)) return;
    this.#evaluated[group] = stamp;
    if (filtered && this.#allowed[group] !== stamp) return;
    if (this.#evaluate(best.spare, group, runLimit, level, holder)) {
      best.offerSpare();
    }
  }

  /** The i-th hint of the reused answer, made the first time a lookup ranks that many. */
  #reusedHint(i: number): Writable<ReplicaHint> {
    let hint = this.#reusedHints[i];
    if (hint === undefined) {
      hint = blankHint();
      this.#reusedHints.push(hint);
    }
    return hint;
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
    const replicas = [...scope.replicas.values()].map((replica) => ({
      replicaId: replica.id,
      stats: replica.stats,
      prefixCount:
        hashScheme === undefined ? replica.holdings : (replica.groups.get(hashScheme)?.count ?? 0),
      lastSeenAt: replica.lastSeenAt,
    }));
    replicas.sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1));
    const hashSchemes = [...scope.schemes.values()]
      .filter((s) => s.entries > 0 && (hashScheme === undefined || s.name === hashScheme))
      .map((s) => ({ hashScheme: s.name, entries: s.entries }))
      .sort((a, b) => (a.hashScheme < b.hashScheme ? -1 : 1));
    const totalEntries = hashSchemes.reduce((sum, s) => sum + s.entries, 0);
    return { replicas, totalEntries, hashSchemes };
  }

  keepAlive(ref: ReplicaRef, until: number): void {
    const replica = this.#tenants.get(ref.tenant)?.get(ref.model)?.replicas.get(ref.replicaId);
    if (replica === undefined) return;
    replica.liveUntil = until;
    if (until > this.#liveUntilMax) this.#liveUntilMax = until;
  }

  sweep(budget: number): SweepOutcome {
    const outcome = this.#sweep(budget);
    this.#releaseEmptied();
    return outcome;
  }

  #sweep(budget: number): SweepOutcome {
    const now = this.#options.clock.now();
    const tick = this.#tick(now);
    const liveSince = this.#expiryTick(now) - this.#options.ttlMs;
    this.#blocks.migrate(budget);
    let expiredEntries = 0;
    let renewedEntries = 0;
    while (this.#oldest !== NIL) {
      const oldest = this.#oldest;
      const word = this.#holders.get(oldest, CONFIRMED);
      if ((word & TICK_MASK) >= liveSince) break;
      if (expiredEntries + renewedEntries >= budget) {
        return { expiredEntries, renewedEntries, removedReplicas: 0, done: false };
      }
      const group = this.#groups[this.#slab.owner(oldest)] as HolderGroup;
      if (group.replica.liveUntil >= now) {
        this.#confirm(oldest, tick, word >>> TIER_SHIFT);
        this.#moveToNewest(oldest);
        this.#moveToBlockFront(oldest, this.#holders.get(oldest, BLOCK));
        // Its stream vouched for it: the replica counts as heard from, which keeps the order
        // below true (an entry is never confirmed after its replica was last seen).
        this.#markSeen(group.replica, now);
        renewedEntries++;
      } else {
        this.#removeHolder(oldest);
        expiredEntries++;
      }
    }
    // Every entry a replica holds was confirmed no later than the replica was last seen, so once
    // no expired entry is left, a replica silent past the TTL holds nothing.
    const replicaSince = now - this.#options.ttlMs;
    let removedReplicas = 0;
    while (
      this.#quietest !== undefined &&
      this.#quietest.lastSeenAt < replicaSince &&
      this.#quietest.holdings === 0
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
        for (const scheme of scope.schemes.values()) entries += scheme.entries;
        if (entries > 0) {
          entriesByModel.set(scope.model, (entriesByModel.get(scope.model) ?? 0) + entries);
        }
      }
    }
    return { entries: this.#entries, entriesByModel, replicas: this.#replicaCount };
  }

  get tierClearVisits(): number {
    return this.#tierClearVisits;
  }

  get tiesSettledInOrder(): number {
    return this.#tiesSettledInOrder;
  }

  get arrayBytes(): number {
    return this.#blocks.byteLength + this.#slab.byteLength + this.#holders.byteLength;
  }

  /**
   * Checks that every holder is in its block's list and in the list by confirmation, that the
   * counts agree with the holders, that a block is marked hot exactly when it has a holder count
   * and that count is its holders', that the groups index the holders of hot blocks and
   * nothing else, and that each scheme's groups are in tie order and each scope's replicas in id
   * order, numbered to match, with loads that are their stats'.
   */
  consistencyProblems(): string[] {
    const problems: string[] = [];
    const holdersOf = new Map<number, number>();
    let live = 0;
    for (let holder = 0; holder < this.#slab.slotCapacity; holder++) {
      const block = this.#holders.get(holder, BLOCK);
      if (block === NIL) continue;
      live++;
      holdersOf.set(block, (holdersOf.get(block) ?? 0) + 1);
    }
    if (live !== this.#entries) problems.push(`${live} holders, but ${this.#entries} entries`);
    let listed = 0;
    for (let h = this.#oldest; h !== NIL && listed <= live; h = this.#holders.get(h, LRU_NEWER)) {
      listed++;
    }
    if (listed !== live) problems.push(`${listed} holders by confirmation, but ${live} holders`);
    let grouped = 0;
    for (const group of this.#groups) grouped += group?.count ?? 0;
    if (grouped !== live) problems.push(`groups count ${grouped} holders, but there are ${live}`);
    for (const [block, count] of holdersOf) {
      const hot = this.#blocks.isHot(block);
      let inList = 0;
      for (
        let h = this.#blocks.headOf(block);
        h !== NIL && inList <= count;
        h = this.#holders.get(h, BLOCK_NEXT)
      ) {
        inList++;
        if (this.#holders.get(h, BLOCK) !== block) {
          problems.push(`block ${block}'s list has holder ${h} of another block`);
        }
        const group = this.#groups[this.#slab.owner(h)] as HolderGroup;
        if (hot && group.hotByBlock?.get(block) !== h) {
          problems.push(`hot block ${block}'s holder ${h} is not indexed by its group`);
        }
      }
      if (inList !== count) problems.push(`block ${block} lists ${inList} of its ${count} holders`);
      const hotCount = this.#hotCounts.get(block);
      if (hot !== (hotCount !== undefined)) {
        const marked = hot ? "hot without a holder count" : "cold with a holder count";
        problems.push(`block ${block} is ${marked}`);
      } else if (hotCount !== undefined && hotCount !== count) {
        problems.push(`hot block ${block} is counted ${hotCount} holders, but has ${count}`);
      }
    }
    for (const block of this.#hotCounts.keys()) {
      if (!holdersOf.has(block)) problems.push(`block ${block} is counted, but nobody holds it`);
    }
    for (const scheme of this.#schemeScopes) {
      if (scheme === undefined) continue;
      const ranked = scheme.byRank;
      if (ranked.length !== scheme.groups) {
        problems.push(`scheme ${scheme.id} ranks ${ranked.length} of its ${scheme.groups} groups`);
      }
      ranked.forEach((group, i) => {
        if (group.scheme !== scheme || this.#groups[group.id] !== group) {
          problems.push(`scheme ${scheme.id} ranks group ${group.id} at ${i}, wrongly`);
        }
        const after = ranked[i + 1];
        if (after !== undefined && !winsTie(group.replica, after.replica)) {
          problems.push(`scheme ${scheme.id} ranks group ${group.id} before ${after.id}`);
        }
      });
    }
    for (const models of this.#tenants.values()) {
      for (const scope of models.values()) {
        for (const replica of scope.replicas.values()) {
          if (replica.load !== loadOf(replica.stats)) {
            problems.push(`replica ${replica.id} has load ${replica.load}, not its stats' load`);
          }
        }
        const { byId } = scope;
        if (byId.length !== scope.replicas.size) {
          problems.push(`${byId.length} replicas by id, but the scope has ${scope.replicas.size}`);
        }
        byId.forEach((replica, i) => {
          const after = byId[i + 1];
          if (scope.replicas.get(replica.id) !== replica) {
            problems.push(`replica ${replica.id} is by id, but not in its scope`);
          }
          if (after !== undefined && !(replica.id < after.id && replica.order < after.order)) {
            problems.push(`replica ${replica.id} is by id before ${after.id}, wrongly`);
          }
        });
      }
    }
    for (const group of this.#groups) {
      if (group?.hotByBlock === undefined) continue;
      for (const [block, holder] of group.hotByBlock) {
        if (!this.#blocks.isHot(block) || this.#holders.get(holder, BLOCK) !== block) {
          problems.push(`group ${group.id} indexes holder ${holder} for block ${block}, wrongly`);
        }
      }
    }
    return problems;
  }

  /**
   * Writes into `into` the consecutive run of `group` from the head of the chain, at most
   * `runLimit` blocks long, and returns true; returns false, leaving `into` as it was, if the group
   * has no run. Whether the run ranks is for `offerSpare` to say. `known` is the group's holder of
   * the block at `knownLevel` (below `runLimit`), met by the caller: that block needs no probe.
   * The lookup's clock is read from the fields lookup set (#lookupNow and what derives from it):
   * a double passed to a call that is not inlined would be boxed, an allocation per evaluation.
   *
   * The run is read from `known` down to the head first, then up from `known`. A write stores a
   * chain's blocks side by side in the group's chunk, so each step down from the holder in hand is
   * usually one read beside it (#besideInChunk); read up from the head, the first block would
   * need a probe of its own (a walk of its list, or its hot map), and the head block is the one
   * most replicas share. Should a block below `knownLevel` be missing or expired, the run ends
   * below it: it is read again from the head up to that block. Either way the run, its oldest
   * confirmation and its weakest tier are those of the blocks from the head, as a walk up reads.
   */
  #evaluate(
    into: Candidate,
    group: number,
    runLimit: number,
    knownLevel: number,
    known: number,
  ): boolean {
    const replica = (this.#groups[group] as HolderGroup).replica;
    const tiers = this.#tiers;
    const lookupNow = this.#lookupNow;
    const liveSince = this.#liveSince;
    let oldest = Number.POSITIVE_INFINITY;
    let weight = Number.POSITIVE_INFINITY;
    let tierMask = GPU;
    // Down from the known level; on success the walk up goes on from just above it.
    let from = knownLevel + 1;
    let limit = runLimit;
    for (let level = knownLevel, holder = known; ; ) {
      const word = this.#holders.get(holder, CONFIRMED);
      const confirmed = word & TICK_MASK;
      // Read only past the TTL: on a busy server the field is often a cache miss.
      if (confirmed < liveSince && replica.liveUntil < lookupNow) {
        holder = NIL;
      } else {
        if (confirmed < oldest) oldest = confirmed;
        const mask = word >>> TIER_SHIFT;
        if (tiers.weaker(mask, tierMask, weight)) {
          weight = tiers.weightOf(mask);
          tierMask = mask;
        }
        if (level === 0) break;
        level--;
        const block = this.#chain[level] as number;
        const beside = this.#besideInChunk(holder, block);
        holder = beside !== NIL ? beside : this.#holderOf(block, group);
      }
      if (holder === NIL) {
        // The run ends below `level`: read it from the head, with nothing carried over.
        oldest = Number.POSITIVE_INFINITY;
        weight = Number.POSITIVE_INFINITY;
        tierMask = GPU;
        from = 0;
        limit = level;
        break;
      }
    }
    let previous = from === 0 ? NIL : known;
    let run = from;
    for (; run < limit; run++) {
      const block = this.#chain[run] as number;
      let holder = previous === NIL ? NIL : this.#besideInChunk(previous, block);
      if (holder === NIL) holder = this.#holderOf(block, group);
      if (holder === NIL) break;
      previous = holder;
      const word = this.#holders.get(holder, CONFIRMED);
      const confirmed = word & TICK_MASK;
      if (confirmed < liveSince && replica.liveUntil < lookupNow) break;
      if (confirmed < oldest) oldest = confirmed;
      const mask = word >>> TIER_SHIFT;
      if (tiers.weaker(mask, tierMask, weight)) {
        weight = tiers.weightOf(mask);
        tierMask = mask;
      }
    }
    if (run === 0) return false;
    const tokens = this.#blocks.tokenCountOf(this.#chain[run - 1] as number);
    const freshness = freshnessAt(this.#lookupTick - oldest, this.#options.ttlMs);
    into.replica = replica;
    into.blocks = run;
    into.tokens = tokens;
    into.freshness = freshness;
    into.tier = tiers.tierOf(tierMask);
    into.score = tokens * freshness * weight;
    return true;
  }

  /**
   * The holder of `block` in a slot next to `holder` in its chunk (so of the same group), or NIL.
   * A write stores a chain's new blocks deepest first into consecutive slots, so the holder of a
   * chain's next block usually sits just before its predecessor's: one read instead of a walk of
   * the block's list.
   */
  #besideInChunk(holder: number, block: number): number {
    const chunk = holder >>> CHUNK_BITS;
    const before = holder - 1;
    if (
      before >= 0 &&
      before >>> CHUNK_BITS === chunk &&
      this.#holders.get(before, BLOCK) === block
    ) {
      return before;
    }
    const after = holder + 1;
    if (after >>> CHUNK_BITS === chunk && this.#holders.get(after, BLOCK) === block) return after;
    return NIL;
  }

  /** The holder of `block` in `group`, or NIL. Cold blocks are walked; `#walked` says how far. */
  #holderOf(block: number, group: number): number {
    if (this.#blocks.isHot(block)) {
      this.#walkedPrev = PREV_UNKNOWN;
      return (this.#groups[group] as HolderGroup).hotByBlock?.get(block) ?? NIL;
    }
    let walked = 0;
    let prev = NIL;
    for (let holder = this.#blocks.headOf(block); holder !== NIL; walked++) {
      if (this.#slab.owner(holder) === group) {
        this.#walked = walked;
        this.#walkedPrev = prev;
        return holder;
      }
      prev = holder;
      holder = this.#holders.get(holder, BLOCK_NEXT);
    }
    this.#walked = walked;
    return NIL;
  }

  /** Adds or refreshes `prefixes` for `replica`; returns how many were accepted. */
  #add(
    replica: ReplicaRecord,
    schemeName: HashScheme,
    prefixes: readonly PrefixEntry[],
    tick: number,
    dropped: DropCounts,
    evicted: EvictionCounts,
    tier: number,
  ): number {
    if (schemeName === "") {
      dropped["hash-scheme-missing"] += prefixes.length;
      return 0;
    }
    const existing = replica.groups.get(schemeName);
    if ((existing === undefined || existing.count === 0) && !this.#roomForScheme(replica)) {
      for (const prefix of prefixes) {
        dropped[prefixHashProblem(prefix.prefixHash) ?? "too-many-hash-schemes"]++;
      }
      return 0;
    }
    const blocks = this.#blocks;
    let accepted = 0;
    const keys = this.#fingerprints(prefixes);
    const scheme = replica.scope.schemes.get(schemeName);
    if (scheme !== undefined) this.#warm(scheme.id, prefixes.length);
    // Created with the first accepted prefix, so that a write of bad hashes creates nothing.
    let group: HolderGroup | undefined;
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
      group ??= this.#groupFor(replica, schemeName);
      // At most MAX_TOKEN_COUNT, which is TOKEN_MASK: the count fits beside the hot bit.
      const tokens = tokenCountOf(prefix.tokenCount);
      const high = keys[2 * i] as number;
      const low = keys[2 * i + 1] as number;
      let block = blocks.find(group.scheme.id, high, low);
      this.#walked = 0;
      if (block !== NIL) {
        const known = this.#holderOf(block, group.id);
        if (known !== NIL) {
          this.#setTokens(block, tokens);
          this.#confirm(known, tick, (this.#holders.get(known, CONFIRMED) >>> TIER_SHIFT) | tier);
          group.tiersEver |= tier;
          if (this.#logging) this.#logTiered(known);
          this.#moveToNewest(known);
          this.#moveToBlockFront(known, block, this.#walkedPrev);
          continue;
        }
      }
      let walked = this.#walked;
      if (this.#entries >= this.#maxEntries) {
        while (this.#entries >= this.#maxEntries && this.#oldest !== NIL) {
          // An entry already past its TTL leaves for that reason, whether or not the sweeper got
          // to it yet: counting it as cap pressure would mislead whoever sizes the cap.
          if (this.#expired(this.#oldest, tick)) evicted.ttl++;
          else evicted.cap++;
          this.#removeHolder(this.#oldest);
        }
        // The eviction may have emptied and deleted this very block, or removed some of its
        // holders: the count that decides promotion is taken again (the group holds none of it).
        block = blocks.find(group.scheme.id, high, low);
        walked = 0;
        if (block !== NIL && !this.#blocks.isHot(block)) {
          this.#holderOf(block, group.id);
          walked = this.#walked;
        }
      }
      if (block === NIL) block = blocks.create(group.scheme.id, high, low, tokens);
      else this.#setTokens(block, tokens);
      this.#insertHolder(group, block, tick, tier, walked);
    }
    return accepted;
  }

  #insertHolder(
    group: HolderGroup,
    block: number,
    tick: number,
    tier: number,
    walked: number,
  ): void {
    const holder = this.#slab.allocate(group.id);
    if (holder >= this.#holderSlots) {
      this.#holders.ensure(holder);
      // Fields start at 0, which is a block's id: a new slot must name no block.
      const capacity = this.#holders.capacity;
      for (let slot = this.#holderSlots; slot < capacity; slot++) {
        this.#holders.set(slot, BLOCK, NIL);
      }
      this.#holderSlots = capacity;
    }
    this.#confirm(holder, tick, tier);
    group.tiersEver |= tier;
    if (this.#logging) this.#logTiered(holder);
    this.#appendNewest(holder);
    const hot = this.#blocks.isHot(block);
    this.#pushBlockFront(holder, block, hot);
    group.count++;
    group.scheme.entries++;
    group.replica.holdings++;
    this.#entries++;
    if (hot) {
      this.#indexHot(group, block, holder, NIL);
      this.#hotCounts.set(block, (this.#hotCounts.get(block) ?? 0) + 1);
    } else if (walked + 1 >= this.#tuning.hotPromote) {
      this.#promote(block, walked + 1);
    }
  }

  /** Removes `prefixes` from `replica` in `scheme`, or in every scheme when it is "". */
  #evict(
    replica: ReplicaRecord,
    schemeName: HashScheme,
    prefixes: readonly PrefixEntry[],
    dropped: DropCounts,
    tiers: number,
  ): number {
    let groups: readonly HolderGroup[];
    if (schemeName === "") groups = [...replica.groups.values()];
    else {
      const group = replica.groups.get(schemeName);
      groups = group === undefined ? NO_GROUPS : [group];
    }
    let removed = 0;
    const keys = this.#fingerprints(prefixes);
    if (groups.length === 1) this.#warm((groups[0] as HolderGroup).scheme.id, prefixes.length);
    for (let i = 0; i < prefixes.length; i++) {
      const problem = prefixHashProblem((prefixes[i] as PrefixEntry).prefixHash);
      if (problem !== undefined) {
        dropped[problem]++;
        continue;
      }
      for (const group of groups) {
        const block = this.#blocks.find(
          group.scheme.id,
          keys[2 * i] as number,
          keys[2 * i + 1] as number,
        );
        if (block === NIL) continue;
        const holder = this.#holderOf(block, group.id);
        if (holder !== NIL && this.#dropTiers(holder, tiers, this.#walkedPrev)) removed++;
      }
    }
    return removed;
  }

  /**
   * Removes everything `replica` holds, during a batch (see #clearTiers): what it holds after is
   * what the batch adds after. Cost: O(its holdings).
   */
  #clear(replica: ReplicaRecord): number {
    let removed = 0;
    for (const group of replica.groups.values()) {
      for (let slot = this.#slab.anySlot(group.id); slot !== NIL; ) {
        this.#removeHolder(slot);
        removed++;
        slot = this.#slab.anySlot(group.id);
      }
    }
    this.#markCleared(ALL_TIERS);
    return removed;
  }

  /**
   * Takes `tiers` off everything `replica` holds, during a batch. The first time the batch clears
   * one of them this is O(the replica's holdings); after that nothing holds the tier but what the
   * batch has given it since (the log), so a batch of many clears costs O(holdings + what it
   * writes), not O(holdings) per clear.
   */
  #clearTiers(replica: ReplicaRecord, tiers: number): number {
    let from = this.#tierLogLength;
    for (let tier = 0; tier < TIER_COUNT; tier++) {
      if ((tiers & (1 << tier)) === 0) continue;
      const cleared = this.#clearedFrom[tier] as number;
      if (cleared < 0) from = -1;
      else if (from >= 0 && cleared < from) from = cleared;
    }
    let removed = 0;
    if (from < 0) {
      for (const group of replica.groups.values()) {
        if ((group.tiersEver & tiers) === 0) continue;
        const slots = this.#slab.slotsOf(group.id);
        this.#tierClearVisits += slots.length;
        for (const slot of slots) if (this.#dropTiers(slot, tiers)) removed++;
      }
    } else {
      const log = this.#tierLog;
      const end = this.#tierLogLength;
      this.#tierClearVisits += end - from;
      for (let i = from; i < end; i++) {
        const slot = log[i] as number;
        // Logged holders removed since (or their slots reused by another of its holders, which
        // the log names again) are skipped; only this replica writes during its batch.
        if (this.#holders.get(slot, BLOCK) === NIL) continue;
        const group = this.#groups[this.#slab.owner(slot)] as HolderGroup;
        if (group.replica === replica && this.#dropTiers(slot, tiers)) removed++;
      }
    }
    this.#markCleared(tiers);
    return removed;
  }

  /** Notes that the batch has just cleared `tiers`, and starts logging what it writes after. */
  #markCleared(tiers: number): void {
    for (let tier = 0; tier < TIER_COUNT; tier++) {
      if ((tiers & (1 << tier)) !== 0) this.#clearedFrom[tier] = this.#tierLogLength;
    }
    this.#logging = true;
  }

  /** Logs a holder the batch gave a tier, once it has cleared one (see #clearTiers). */
  #logTiered(holder: number): void {
    if (this.#tierLogLength === this.#tierLog.length) {
      const grown = new Uint32Array(this.#tierLog.length * 2);
      grown.set(this.#tierLog);
      this.#tierLog = grown;
    }
    this.#tierLog[this.#tierLogLength++] = holder;
  }

  /** Takes `tiers` off a holder, removing it when no tier is left; says whether it was removed. */
  #dropTiers(holder: number, tiers: number, prev = PREV_UNKNOWN): boolean {
    const word = this.#holders.get(holder, CONFIRMED);
    const left = (word >>> TIER_SHIFT) & ~tiers;
    if (left !== 0) {
      this.#holders.set(holder, CONFIRMED, ((word & TICK_MASK) | (left << TIER_SHIFT)) >>> 0);
      return false;
    }
    this.#removeHolder(holder, prev);
    return true;
  }

  /**
   * Adds a chain announced by parent (see ChainStoredEvent); returns how many blocks were added.
   * Counts come from the parent's: block i covers the parent's tokens plus (i + 1) x blockSize;
   * a copy (`knownBlocksOnly`) keeps the counts its blocks have.
   */
  #addChain(
    replica: ReplicaRecord,
    schemeName: HashScheme,
    event: ChainStoredEvent,
    tick: number,
    dropped: DropCounts,
    evicted: EvictionCounts,
  ): number {
    const scheme = replica.scope.schemes.get(schemeName);
    const blockOf = (hash: Uint8Array) => {
      if (scheme === undefined || prefixHashProblem(hash) !== undefined) return NIL;
      prefixFingerprint(hash, this.#fingerprint);
      return this.#blocks.find(
        scheme.id,
        this.#fingerprint[0] as number,
        this.#fingerprint[1] as number,
      );
    };
    let base = 0;
    if (event.parentHash !== undefined) {
      const parent = blockOf(event.parentHash);
      base = parent === NIL ? 0 : this.#blocks.tokenCountOf(parent);
    }
    // A copy's blocks are known, so their counts are too: an offload names no parent even when it
    // copies the middle of a sequence, and counting it from the root would overwrite them.
    const counted =
      !event.knownBlocksOnly && event.blockSize > 0 && (event.parentHash === undefined || base > 0);
    const prefixes: PrefixEntry[] = [];
    event.prefixHashes.forEach((prefixHash, i) => {
      if (
        event.knownBlocksOnly &&
        prefixHashProblem(prefixHash) === undefined &&
        blockOf(prefixHash) === NIL
      ) {
        dropped["unknown-block"]++;
        return;
      }
      prefixes.push({ prefixHash, tokenCount: counted ? base + (i + 1) * event.blockSize : 0 });
    });
    const tier = event.tier === undefined ? GPU : tierBit(event.tier);
    return this.#add(replica, schemeName, prefixes, tick, dropped, evicted, tier);
  }

  /**
   * Warms the block table for a batch of prefixes (see BlockStore.warm): about 15% more block
   * writes per second at a million blocks (bench/write-bench.ts). Short batches gain nothing.
   */
  #warm(schemeId: number, count: number): void {
    if (count >= 4) this.#blocks.warm(schemeId, this.#keys, count);
  }

  /**
   * The fingerprint of each prefix i at `[2i]` (high) and `[2i + 1]` (low) of a scratch array the
   * next call overwrites; entries of unusable hashes are left as they were.
   */
  #fingerprints(prefixes: readonly PrefixEntry[]): Uint32Array {
    const count = prefixes.length;
    const keys = this.#keys.length >= 2 * count ? this.#keys : this.#growKeys(count);
    for (let i = 0; i < count; i++) {
      const hash = (prefixes[i] as PrefixEntry).prefixHash;
      if (prefixHashProblem(hash) === undefined) prefixFingerprint(hash, keys, 2 * i);
    }
    return keys;
  }

  /** Grows `#keys` to hold the fingerprints of `count` prefixes. */
  #growKeys(count: number): Uint32Array {
    this.#keys = new Uint32Array(4 * count);
    return this.#keys;
  }

  /** Sets a holder's confirmation tick and tiers. */
  #confirm(holder: number, tick: number, tiers: number): void {
    this.#holders.set(holder, CONFIRMED, (tick | (tiers << TIER_SHIFT)) >>> 0);
  }

  /** Whether a holder is past its TTL at `tick` and not kept alive. */
  #expired(holder: number, tick: number): boolean {
    if ((this.#holders.get(holder, CONFIRMED) & TICK_MASK) >= tick - this.#options.ttlMs) {
      return false;
    }
    const group = this.#groups[this.#slab.owner(holder)] as HolderGroup;
    return group.replica.liveUntil < this.#base + tick;
  }

  /** Unlinks a holder from every list, frees its slot, and deletes its block if it was the last. */
  #removeHolder(holder: number, prev = PREV_UNKNOWN): void {
    const group = this.#groups[this.#slab.owner(holder)] as HolderGroup;
    const block = this.#holders.get(holder, BLOCK);
    const hot = this.#blocks.isHot(block);
    this.#unlinkFromBlock(holder, block, hot, prev);
    if (hot) {
      group.hotPrev?.delete(holder);
      group.hotByBlock?.delete(block);
      const left = (this.#hotCounts.get(block) ?? 1) - 1;
      if (left < this.#tuning.hotDemote) this.#demote(block);
      else this.#hotCounts.set(block, left);
    }
    if (this.#blocks.headOf(block) === NIL) this.#blocks.delete(block);
    this.#detachLru(holder);
    // A free slot names no block: a lookup's test of a neighbouring slot relies on it.
    this.#holders.set(holder, BLOCK, NIL);
    this.#slab.free(holder);
    if (--group.count === 0) this.#emptied.push(group);
    group.scheme.entries--;
    group.replica.holdings--;
    this.#entries--;
  }

  /** Makes `block` hot: every holder becomes findable by its group in O(1). */
  #promote(block: number, holders: number): void {
    this.#blocks.setHot(block, true);
    this.#hotCounts.set(block, holders);
    let prev = NIL;
    for (let h = this.#blocks.headOf(block); h !== NIL; h = this.#holders.get(h, BLOCK_NEXT)) {
      this.#indexHot(this.#groups[this.#slab.owner(h)] as HolderGroup, block, h, prev);
      prev = h;
    }
  }

  #demote(block: number): void {
    this.#hotCounts.delete(block);
    this.#blocks.setHot(block, false);
    for (let h = this.#blocks.headOf(block); h !== NIL; h = this.#holders.get(h, BLOCK_NEXT)) {
      const group = this.#groups[this.#slab.owner(h)] as HolderGroup;
      group.hotByBlock?.delete(block);
      group.hotPrev?.delete(h);
    }
  }

  #indexHot(group: HolderGroup, block: number, holder: number, prev: number): void {
    group.hotByBlock ??= new Map();
    group.hotPrev ??= new Map();
    group.hotByBlock.set(block, holder);
    group.hotPrev.set(holder, prev);
  }

  /** Records `prev` as the previous holder of `holder`, a holder of a hot block. */
  #setHotPrev(holder: number, prev: number): void {
    (this.#groups[this.#slab.owner(holder)] as HolderGroup).hotPrev?.set(holder, prev);
  }

  /** Sets a block's token count; 0 (unknown) keeps the count it has. */
  #setTokens(block: number, tokens: number): void {
    if (tokens !== 0) this.#blocks.setTokenCount(block, tokens);
  }

  /**
   * Whether `replica` may hold entries under one more scheme: it holds some under fewer than
   * MAX_SCHEMES_PER_REPLICA. Groups emptied earlier in the write are released first, so that a
   * batch cannot pile up empty ones. Runs between a write's steps, when no group is held.
   */
  #roomForScheme(replica: ReplicaRecord): boolean {
    if (replica.groups.size < MAX_SCHEMES_PER_REPLICA) return true;
    this.#releaseEmptied();
    return replica.groups.size < MAX_SCHEMES_PER_REPLICA;
  }

  /** Keeps a copy of the replica's stats; a new load moves its groups in their tie order. */
  #setStats(replica: ReplicaRecord, stats: ReplicaStats): void {
    replica.stats = copyStats(stats);
    const load = loadOf(stats);
    const previous = replica.load;
    if (load === previous) return;
    for (const group of replica.groups.values()) {
      // rankOf finds the group by the load it is ranked by (the previous one) and shiftToRank
      // moves it by the new one; each group is in a tie order of its own scheme.
      replica.load = previous;
      const at = rankOf(group);
      replica.load = load;
      shiftToRank(group.scheme.byRank, at);
    }
    replica.load = load;
  }

  /** Finds or creates the replica's group for `schemeName` (and the scheme's scope). */
  #groupFor(replica: ReplicaRecord, schemeName: HashScheme): HolderGroup {
    const known = replica.groups.get(schemeName);
    if (known !== undefined) return known;
    let scheme = replica.scope.schemes.get(schemeName);
    if (scheme === undefined) {
      const id = this.#freeSchemeIds.pop() ?? this.#schemeScopes.length;
      scheme = { id, name: schemeName, scope: replica.scope, entries: 0, groups: 0, byRank: [] };
      this.#schemeScopes[id] = scheme;
      replica.scope.schemes.set(schemeName, scheme);
    }
    scheme.groups++;
    const id = this.#freeGroupIds.pop() ?? this.#groups.length;
    const group: HolderGroup = {
      id,
      replica,
      scheme,
      count: 0,
      tiersEver: 0,
      hotByBlock: undefined,
      hotPrev: undefined,
    };
    scheme.byRank.splice(positionOf(scheme.byRank, replica.load, replica.order), 0, group);
    this.#groups[id] = group;
    this.#slab.ensureGroups(id + 1);
    if (id >= this.#evaluated.length) {
      let size = this.#evaluated.length;
      while (size <= id) size *= 2;
      const evaluated = new Uint32Array(size);
      evaluated.set(this.#evaluated);
      this.#evaluated = evaluated;
      const allowed = new Uint32Array(size);
      allowed.set(this.#allowed);
      this.#allowed = allowed;
    }
    replica.groups.set(schemeName, group);
    return group;
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
      scope = { tenant, model, replicas: new Map(), schemes: new Map(), byId: [] };
      models.set(model, scope);
    }
    let replica = scope.replicas.get(id);
    if (replica === undefined) {
      replica = {
        id,
        scope,
        stats: undefined,
        load: 0,
        order: 0,
        lastSeenAt: now,
        liveUntil: Number.NEGATIVE_INFINITY,
        holdings: 0,
        groups: new Map(),
        quieter: undefined,
        louder: undefined,
      };
      scope.replicas.set(id, replica);
      placeById(replica);
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

  /**
   * Releases the groups that holder removals emptied and that are still empty: a replica that
   * wrote under many schemes keeps no state for those it holds nothing in any more, so that its
   * clears cost O(holdings), not O(schemes ever used). Runs at the end of each write and sweep,
   * when nothing holds a group across the removal.
   */
  #releaseEmptied(): void {
    const emptied = this.#emptied;
    if (emptied.length === 0) return;
    for (const group of emptied) {
      if (group.count === 0 && this.#groups[group.id] === group) this.#releaseGroup(group);
    }
    emptied.length = 0;
  }

  /** Forgets a group that holds nothing, and its scheme scope once no group is under it. */
  #releaseGroup(group: HolderGroup): void {
    group.replica.groups.delete(group.scheme.name);
    group.scheme.byRank.splice(rankOf(group), 1);
    this.#groups[group.id] = undefined;
    this.#freeGroupIds.push(group.id);
    const { scheme } = group;
    if (--scheme.groups === 0) {
      // Entries belong to groups, so the scheme holds none and no block is keyed by its id.
      scheme.scope.schemes.delete(scheme.name);
      this.#schemeScopes[scheme.id] = undefined;
      this.#freeSchemeIds.push(scheme.id);
    }
  }

  /** Forgets a replica that holds nothing, and its (tenant, model) once that is empty. */
  #removeReplica(replica: ReplicaRecord): void {
    this.#detachReplica(replica);
    this.#replicaCount--;
    for (const group of replica.groups.values()) this.#releaseGroup(group);
    const { scope } = replica;
    scope.replicas.delete(replica.id);
    scope.byId.splice(idPositionOf(scope.byId, replica.id), 1);
    if (scope.replicas.size === 0) {
      // Every scheme scope was released with the last group under it.
      const models = this.#tenants.get(scope.tenant);
      models?.delete(scope.model);
      if (models !== undefined && models.size === 0) this.#tenants.delete(scope.tenant);
    }
  }

  /**
   * `now` as a tick for reading ages: rounded up, where a confirmation's tick is rounded down, so
   * that an age read in whole ticks is never less than the true one. An entry past the TTL by a
   * fraction of a millisecond is then never taken as live; one confirmed in the middle of a
   * millisecond may expire up to a millisecond early (with a clock in whole milliseconds, as in
   * the tests, both are exact). Does not rebase: lookups read, only writes and sweeps move #base.
   */
  #expiryTick(now: number): number {
    const tick = Math.ceil(now - this.#base);
    return tick < 0 ? 0 : tick;
  }

  /** Ticks for a clock reading; rebases every confirmation once ticks reach 2^28 (~37 hours after the last). */
  #tick(now: number): number {
    const tick = Math.floor(now - this.#base);
    if (tick < REBASE_AT) return tick < 0 ? 0 : tick;
    // O(holder slots), once per ~37 hours of uptime: shift so that `now` is KEEP_AFTER_REBASE.
    // Confirmations older than that are clamped to 0, which only makes them older than the TTL.
    const shift = tick - KEEP_AFTER_REBASE;
    this.#base += shift;
    const slots = this.#slab.slotCapacity;
    for (let slot = 0; slot < slots; slot++) {
      const word = this.#holders.get(slot, CONFIRMED);
      const confirmed = word & TICK_MASK;
      this.#confirm(slot, confirmed > shift ? confirmed - shift : 0, word >>> TIER_SHIFT);
    }
    return KEEP_AFTER_REBASE;
  }

  #nextStamp(): number {
    this.#stamp = (this.#stamp + 1) >>> 0;
    if (this.#stamp === 0) {
      this.#evaluated.fill(0);
      this.#allowed.fill(0);
      this.#stamp = 1;
    }
    return this.#stamp;
  }

  /**
   * Puts `holder` at the head of `block`'s list; `hot` says whether the block is hot (a hot block's
   * new holder must be indexed after).
   */
  #pushBlockFront(holder: number, block: number, hot: boolean): void {
    const first = this.#blocks.headOf(block);
    this.#holders.set(holder, BLOCK, block);
    this.#holders.set(holder, BLOCK_NEXT, first);
    this.#blocks.setHead(block, holder);
    if (first !== NIL && hot) this.#setHotPrev(first, holder);
  }

  /**
   * Takes `holder` out of `block`'s list (`hot`: whether the block is). The list is singly
   * linked, so the previous holder is looked up in a hot block; in a cold one it is `knownPrev`
   * when the caller has just walked to `holder` (PREV_UNKNOWN otherwise), else found by a walk
   * from the head of the block's short list (at most `hotPromote` - 1 holders, or `hotDemote` for
   * odd tunings).
   */
  #unlinkFromBlock(holder: number, block: number, hot: boolean, knownPrev: number): void {
    const next = this.#holders.get(holder, BLOCK_NEXT);
    let prev = NIL;
    if (this.#blocks.headOf(block) === holder) {
      // The head: its entry in hotPrev is not kept (see #moveToBlockFront).
    } else if (hot) {
      prev = (this.#groups[this.#slab.owner(holder)] as HolderGroup).hotPrev?.get(holder) ?? NIL;
    } else if (knownPrev !== PREV_UNKNOWN) {
      prev = knownPrev;
    } else {
      for (let h = this.#blocks.headOf(block); h !== holder; h = this.#holders.get(h, BLOCK_NEXT)) {
        prev = h;
      }
    }
    if (prev === NIL) this.#blocks.setHead(block, next);
    else this.#holders.set(prev, BLOCK_NEXT, next);
    if (hot && next !== NIL) this.#setHotPrev(next, prev);
  }

  /**
   * Moves `holder` to the head of `block`'s list (`knownPrev` as for #unlinkFromBlock). A hot
   * head's entry in hotPrev is left as it was: a head's predecessor is never read, and pushing a
   * holder in front of it sets the entry again.
   */
  #moveToBlockFront(holder: number, block: number, knownPrev = PREV_UNKNOWN): void {
    if (this.#blocks.headOf(block) === holder) return;
    const hot = this.#blocks.isHot(block);
    this.#unlinkFromBlock(holder, block, hot, knownPrev);
    this.#pushBlockFront(holder, block, hot);
  }

  #appendNewest(holder: number): void {
    this.#holders.set(holder, LRU_OLDER, this.#newest);
    this.#holders.set(holder, LRU_NEWER, NIL);
    if (this.#newest === NIL) this.#oldest = holder;
    else this.#holders.set(this.#newest, LRU_NEWER, holder);
    this.#newest = holder;
  }

  #moveToNewest(holder: number): void {
    if (this.#newest === holder) return;
    this.#detachLru(holder);
    this.#appendNewest(holder);
  }

  #detachLru(holder: number): void {
    const older = this.#holders.get(holder, LRU_OLDER);
    const newer = this.#holders.get(holder, LRU_NEWER);
    if (older === NIL) this.#oldest = newer;
    else this.#holders.set(older, LRU_NEWER, newer);
    if (newer === NIL) this.#newest = older;
    else this.#holders.set(newer, LRU_OLDER, older);
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

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** A prefix-match answer whose flags and hints a lookup fills in. */
interface AnswerInProgress extends RouteAnswer {
  chainTruncated: boolean;
  evaluatedBlocks: number;
  readonly hints: ReplicaHint[];
}

/** The names of the scope's schemes that hold entries (a scheme stays while replicas use it). */
function* schemesWithEntries(scope: ModelScope): Iterable<HashScheme> {
  for (const scheme of scope.schemes.values()) if (scheme.entries > 0) yield scheme.name;
}

function newAnswer(): AnswerInProgress {
  return {
    reason: "prefix-match",
    hints: [],
    invalidField: "",
    chainTruncated: false,
    evaluatedBlocks: 0,
    detail: "",
  };
}

/** A hint of one shape for every lookup, filled in by it. */
function blankHint(): Writable<ReplicaHint> {
  return {
    replicaId: "",
    matchedBlocks: 0,
    matchedTokens: 0,
    freshness: 0,
    tier: "gpu",
    score: 0,
    stats: undefined,
  };
}

/** One evaluated replica: its run from the head of the chain. Reused from lookup to lookup. */
class Candidate {
  /** Undefined only while the candidate is spare between lookups. */
  replica: ReplicaRecord | undefined = undefined;
  blocks = 0;
  tokens = 0;
  freshness = 0;
  tier: StorageTier = "gpu";
  score = 0;
}

/**
 * The best candidates of one lookup, sorted by `ranksBefore`, at most `limit`, in objects reused
 * by every lookup. A lookup can evaluate a candidate per replica holding the chain's head; an
 * object each would be garbage that a loaded server pays for in scavenges. An evaluation fills
 * `spare`; `offerSpare()` ranks it in (what it pushes out becomes the spare) or leaves it spare.
 */
class TopCandidates {
  /**
   * The ranked candidates, then the spare: `count + 1` objects at least, grown as candidates are
   * ranked (so a huge limit costs nothing until that many replicas match).
   */
  readonly #slots: Candidate[] = [new Candidate()];
  #limit = 0;
  #count = 0;

  /** Candidates ranked so far. */
  get count(): number {
    return this.#count;
  }

  /** Empties the list for a lookup of at most `limit` (>= 1) hints. */
  reset(limit: number): void {
    this.#limit = limit;
    this.#count = 0;
  }

  /** The k-th best once the list is full: what a candidate must beat to enter. */
  get kth(): Candidate | undefined {
    return this.#count === this.#limit ? this.#slots[this.#limit - 1] : undefined;
  }

  /** The object the next evaluation writes into. */
  get spare(): Candidate {
    return this.#slots[this.#count] as Candidate;
  }

  /** The i-th best, for i < count. */
  at(i: number): Candidate {
    return this.#slots[i] as Candidate;
  }

  /** Ranks the spare in, unless the list is full and it does not rank before the last. */
  offerSpare(): void {
    const slots = this.#slots;
    const candidate = slots[this.#count] as Candidate;
    const limit = this.#limit;
    let i = this.#count;
    if (i === limit) {
      if (!ranksBefore(candidate, slots[limit - 1] as Candidate)) return;
      // The last is pushed out and becomes the spare.
      slots[limit] = slots[limit - 1] as Candidate;
      i = limit - 1;
    } else {
      this.#count++;
      // The spare's slot, first used now.
      if (slots.length === this.#count) slots.push(new Candidate());
    }
    while (i > 0 && ranksBefore(candidate, slots[i - 1] as Candidate)) {
      slots[i] = slots[i - 1] as Candidate;
      i--;
    }
    slots[i] = candidate;
  }

  /**
   * Empties the list and lets go of the replicas the candidates name, so that none is kept past its
   * removal. (A lookup that throws skips this; the next lookup's candidates replace them.)
   */
  release(): void {
    for (let i = 0; i <= this.#count; i++) (this.#slots[i] as Candidate).replica = undefined;
    this.#count = 0;
  }
}

/**
 * Where a replica with `load` and `id` is, or would go, in `ranked` (in tie order), searching
 * [from, to): the first position there whose group does not win a tie with it. Cost: O(log n).
 */
function positionOf(
  ranked: readonly HolderGroup[],
  load: number,
  order: number,
  from = 0,
  to = ranked.length,
): number {
  let low = from;
  let high = to;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const { replica } = ranked[middle] as HolderGroup;
    if (replica.load < load || (replica.load === load && replica.order < order)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Where `group` is in its scheme's `byRank`. Cost: O(log n). */
function rankOf(group: HolderGroup): number {
  const ranked = group.scheme.byRank;
  const at = positionOf(ranked, group.replica.load, group.replica.order);
  // Always found there while the order is kept; a scan keeps a slip from removing another group.
  return ranked[at] === group ? at : ranked.indexOf(group);
}

/**
 * Past this many places, a group moves in tie order by splice (a memory move of the whole list's
 * tail, twice) instead of a loop over the places passed; about where the two cost the same here.
 */
const SPLICE_DISTANCE = 4096;

/**
 * Moves the group at `i` of `ranked`, whose load just changed, to its place in tie order, found by
 * binary search. A short move shifts the groups passed one by one; a long one (a replica's load
 * may swing across a whole fleet's tie order) takes it out and puts it back with splice. Cost:
 * O(log n) comparisons, then at most SPLICE_DISTANCE steps or two memory moves.
 */
function shiftToRank(ranked: HolderGroup[], i: number): void {
  const group = ranked[i] as HolderGroup;
  const { load, order } = group.replica;
  let to = i;
  if (i > 0 && winsTie(group.replica, (ranked[i - 1] as HolderGroup).replica)) {
    to = positionOf(ranked, load, order, 0, i);
  } else if (
    i + 1 < ranked.length &&
    winsTie((ranked[i + 1] as HolderGroup).replica, group.replica)
  ) {
    to = positionOf(ranked, load, order, i + 1, ranked.length) - 1;
  }
  if (Math.abs(to - i) > SPLICE_DISTANCE) {
    ranked.splice(i, 1);
    ranked.splice(to, 0, group);
    return;
  }
  for (; i > to; i--) ranked[i] = ranked[i - 1] as HolderGroup;
  for (; i < to; i++) ranked[i] = ranked[i + 1] as HolderGroup;
  ranked[to] = group;
}

/** The order of `compareHints`: higher score, then lower load, then replica id. */
function ranksBefore(a: Candidate, b: Candidate): boolean {
  return a.score !== b.score
    ? a.score > b.score
    : winsTie(a.replica as ReplicaRecord, b.replica as ReplicaRecord);
}

/** Whether `a` ranks before `b` when their scores are equal: lower load, then replica id. */
function winsTie(a: ReplicaRecord, b: ReplicaRecord): boolean {
  if (a.load !== b.load) return a.load < b.load;
  return a.order < b.order;
}

/** Where a replica with `id` is, or would go, in `byId`. Cost: O(log n). */
function idPositionOf(byId: readonly ReplicaRecord[], id: ReplicaId): number {
  let low = 0;
  let high = byId.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((byId[middle] as ReplicaRecord).id < id) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Puts a new replica in its scope's `byId` and gives it an `order` between its neighbours': after
 * the last, one more; else halfway. When halving leaves no number between two neighbours (about
 * 50 replicas created at one spot), every replica of the scope is numbered afresh, 0, 1, 2...:
 * O(replicas), and rare, while any other creation costs a binary search and a splice.
 */
function placeById(replica: ReplicaRecord): void {
  const byId = replica.scope.byId;
  const at = idPositionOf(byId, replica.id);
  byId.splice(at, 0, replica);
  const before = byId[at - 1];
  const after = byId[at + 1];
  if (after === undefined) {
    replica.order = before === undefined ? 0 : before.order + 1;
    return;
  }
  const low = before === undefined ? after.order - 1 : before.order;
  const middle = (low + after.order) / 2;
  if (middle > low && middle < after.order) {
    replica.order = middle;
    return;
  }
  byId.forEach((r, i) => {
    r.order = i;
  });
}
