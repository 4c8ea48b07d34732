import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SweepOutcome } from "../src/core/types.js";
import {
  createSweeper,
  resolveSweeperOptions,
  type Sweeper,
  type SweeperOptions,
} from "../src/sweeper.js";

/** An index that only sweeps: records when and with what budget, and answers from a script. */
class FakeSweptIndex {
  readonly budgets: number[] = [];
  readonly times: number[] = [];
  /** How many steps in a row report `done: false` before one reports `done: true`. */
  unfinishedSteps = 0;
  failure: Error | undefined;
  /** Runs inside each step, before it returns. */
  duringStep: (() => void) | undefined;

  sweep(budget: number): SweepOutcome {
    this.budgets.push(budget);
    this.times.push(performance.now());
    this.duringStep?.();
    if (this.failure !== undefined) throw this.failure;
    const done = this.unfinishedSteps === 0;
    if (!done) this.unfinishedSteps--;
    return { expiredEntries: done ? 0 : 1, renewedEntries: 0, removedReplicas: 0, done };
  }

  get steps(): number {
    return this.budgets.length;
  }
}

const started: Sweeper[] = [];

function startSweeper(options: SweeperOptions): Sweeper {
  const sweeper = createSweeper(options);
  started.push(sweeper);
  sweeper.start();
  return sweeper;
}

afterEach(() => {
  for (const sweeper of started.splice(0)) sweeper.stop();
});

const waitUntil = (check: () => void) => vi.waitFor(check, { timeout: 2000, interval: 5 });

describe("resolveSweeperOptions()", () => {
  const index = new FakeSweptIndex();

  it("sweeps 1,000 entries a step every 5 s by default, without warnings", () => {
    const resolved = resolveSweeperOptions({ index });
    expect(resolved.intervalMs).toBe(5000);
    expect(resolved.budget).toBe(1_000);
    expect(resolved.warnings).toEqual([]);
  });

  it("keeps a usable interval and budget", () => {
    const resolved = resolveSweeperOptions({ index, intervalMs: 250, budget: 64 });
    expect(resolved).toMatchObject({ intervalMs: 250, budget: 64, warnings: [] });
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    "falls back to 5000 ms with a warning for an interval of %s",
    (intervalMs) => {
      const resolved = resolveSweeperOptions({ index, intervalMs });
      expect(resolved.intervalMs).toBe(5000);
      expect(resolved.warnings).toEqual([
        expect.stringMatching(/^sweep interval must be positive.*using 5000 ms$/),
      ]);
    },
  );

  it.each([0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY])(
    "falls back to 1,000 entries with a warning for a budget of %s",
    (budget) => {
      const resolved = resolveSweeperOptions({ index, budget });
      expect(resolved.budget).toBe(1_000);
      expect(resolved.warnings).toEqual([
        expect.stringMatching(/^sweep budget must be .*using 1000$/),
      ]);
    },
  );

  it("rounds a fractional budget down", () => {
    expect(resolveSweeperOptions({ index, budget: 99.9 }).budget).toBe(99);
  });

  it("clamps an interval too long for a Node.js timer, which would otherwise fire at once", () => {
    const resolved = resolveSweeperOptions({ index, intervalMs: 2 ** 40 });
    expect(resolved.intervalMs).toBe(2 ** 31 - 1);
    expect(resolved.warnings).toHaveLength(1);
  });

  it("reports both a bad interval and a bad budget", () => {
    expect(resolveSweeperOptions({ index, intervalMs: -1, budget: -1 }).warnings).toHaveLength(2);
  });
});

describe("createSweeper()", () => {
  it("sweeps with its budget once every interval", async () => {
    const index = new FakeSweptIndex();
    startSweeper({ index, intervalMs: 15, budget: 128 });

    await waitUntil(() => expect(index.steps).toBeGreaterThanOrEqual(3));
    expect(index.budgets.slice(0, 3)).toEqual([128, 128, 128]);
    for (let i = 1; i < 3; i++) {
      // Timers may fire up to a millisecond early.
      expect((index.times[i] ?? 0) - (index.times[i - 1] ?? 0)).toBeGreaterThanOrEqual(14);
    }
  });

  it("does not sweep before the first interval has passed", async () => {
    const index = new FakeSweptIndex();
    startSweeper({ index, intervalMs: 200 });
    await sleep(50);
    expect(index.steps).toBe(0);
  });

  it("passes each step's outcome to onSweep", async () => {
    const index = new FakeSweptIndex();
    const outcomes: SweepOutcome[] = [];
    startSweeper({ index, intervalMs: 10, onSweep: (outcome) => outcomes.push(outcome) });

    await waitUntil(() => expect(outcomes.length).toBeGreaterThanOrEqual(1));
    expect(outcomes[0]).toEqual({
      expiredEntries: 0,
      renewedEntries: 0,
      removedReplicas: 0,
      done: true,
    });
  });

  it("continues a sweep that is not done without waiting for the next interval", async () => {
    const index = new FakeSweptIndex();
    index.unfinishedSteps = 100;
    // At one step per interval, 101 steps would take 2 s; continuing takes a few milliseconds.
    startSweeper({ index, intervalMs: 20 });

    await waitUntil(() => expect(index.steps).toBe(101));
    await waitUntil(() => expect(index.steps).toBe(102));
    const runEnd = index.times[100] ?? 0;
    const nextRun = index.times[101] ?? 0;
    expect(nextRun - runEnd).toBeGreaterThanOrEqual(19);
  });

  it("finishes a long sweep promptly even when nothing else wakes the event loop", async () => {
    const index = new FakeSweptIndex();
    index.unfinishedSteps = 200;
    const startedAt = performance.now();
    // No polling here: only the sweeper's own scheduling may drive the steps.
    const finishedAt = await new Promise<number>((resolve) => {
      startSweeper({
        index,
        intervalMs: 10,
        onSweep: (outcome) => {
          if (outcome.done) resolve(performance.now());
        },
      });
    });
    expect(index.steps).toBe(201);
    expect(finishedAt - startedAt).toBeLessThan(1000);
  });

  it("lets other work run between the steps of one sweep", async () => {
    const index = new FakeSweptIndex();
    index.unfinishedSteps = 2;
    const seenBetweenSteps: boolean[] = [];
    let otherWorkRan = false;
    index.duringStep = () => {
      seenBetweenSteps.push(otherWorkRan);
      otherWorkRan = false;
      setImmediate(() => {
        otherWorkRan = true;
      });
    };
    startSweeper({ index, intervalMs: 10 });

    await waitUntil(() => expect(index.steps).toBeGreaterThanOrEqual(3));
    expect(seenBetweenSteps.slice(1, 3)).toEqual([true, true]);
  });

  it("sweeps nothing once stopped, even in the middle of a sweep", async () => {
    const index = new FakeSweptIndex();
    index.unfinishedSteps = Number.POSITIVE_INFINITY;
    const sweeper = createSweeper({
      index,
      intervalMs: 10,
      onSweep: () => {
        if (index.steps === 3) sweeper.stop();
      },
    });
    started.push(sweeper);
    sweeper.start();

    await waitUntil(() => expect(index.steps).toBe(3));
    await sleep(50);
    expect(index.steps).toBe(3);
  });

  it("sweeps nothing when stopped before its first interval, and stops twice without complaint", async () => {
    const index = new FakeSweptIndex();
    const sweeper = startSweeper({ index, intervalMs: 10 });
    sweeper.stop();
    sweeper.stop();

    await sleep(50);
    expect(index.steps).toBe(0);
  });

  it("sweeps again after a restart", async () => {
    const index = new FakeSweptIndex();
    const sweeper = startSweeper({ index, intervalMs: 10 });
    sweeper.stop();
    sweeper.start();

    await waitUntil(() => expect(index.steps).toBeGreaterThanOrEqual(1));
  });

  it("does not sweep twice as often when started twice", async () => {
    const index = new FakeSweptIndex();
    const sweeper = startSweeper({ index, intervalMs: 30 });
    sweeper.start();

    await waitUntil(() => expect(index.steps).toBe(1));
    await sleep(10);
    expect(index.steps).toBe(1);
  });

  it("never keeps the process alive", () => {
    const activeTimers = () =>
      process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
    const before = activeTimers();
    startSweeper({ index: new FakeSweptIndex(), intervalMs: 10 });
    expect(activeTimers()).toBe(before);
  });

  it("falls back to the default interval, with a warning, instead of sweeping in a busy loop", async () => {
    const index = new FakeSweptIndex();
    const sweeper = startSweeper({ index, intervalMs: 0 });

    expect(sweeper.warnings).toEqual([expect.stringContaining("using 5000 ms")]);
    await sleep(50);
    expect(index.steps).toBe(0);
  });

  it("hands an error from the index to onError and tries again at the next interval", async () => {
    const index = new FakeSweptIndex();
    const failure = new Error("sweep failed");
    index.failure = failure;
    index.unfinishedSteps = 5;
    const errors: unknown[] = [];
    startSweeper({ index, intervalMs: 15, onError: (error) => errors.push(error) });

    await waitUntil(() => expect(errors.length).toBeGreaterThanOrEqual(2));
    expect(errors[0]).toBe(failure);
    // A failed step ends its sweep: the retry waits for the interval instead of continuing at once.
    expect((index.times[1] ?? 0) - (index.times[0] ?? 0)).toBeGreaterThanOrEqual(14);
  });
});
