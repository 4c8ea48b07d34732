import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// Exposes V8's gc() to the tests that ask whether something is still reachable.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * Whether `ref`'s target has been garbage collected: full collections between turns of the event
 * loop (a WeakRef keeps its target alive until the turn that made it ends).
 */
export async function isCollected(ref: WeakRef<object>): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    if (ref.deref() === undefined) return true;
  }
  return false;
}
