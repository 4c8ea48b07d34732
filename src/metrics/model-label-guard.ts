import { MAX_NAME_LENGTH, type ModelId } from "../core/types.js";

/** The `model` label value every model past the guard's limit is reported under. */
export const OTHER_MODEL_LABEL = "_other";

/** Options for {@link createModelLabelGuard}. */
export interface ModelLabelGuardOptions {
  /**
   * How many distinct models get a label of their own; 0 reports every model as `_other`.
   * Must be a non-negative integer.
   * @default 200
   */
  readonly maxModelLabels?: number;
}

/**
 * Bounds the `model` label's cardinality. Model names arrive in untrusted requests, and each distinct
 * label value is a time series Prometheus keeps; without a bound, a client sending random model
 * names would grow the sidecar's memory and the monitoring system's without limit.
 */
export interface ModelLabelGuard {
  /**
   * The label to report `model` under: the model itself if it is one of the first `maxModelLabels`
   * distinct valid models seen (first come, first kept, for the life of the process), otherwise
   * `_other`. A name the index would reject (empty, or longer than {@link MAX_NAME_LENGTH}) never
   * takes a label of its own. Cost: one map look-up.
   */
  labelFor(model: ModelId): string;
}

/**
 * Creates a {@link ModelLabelGuard}. Throws a `RangeError` when `maxModelLabels` is not a
 * non-negative integer.
 */
export function createModelLabelGuard(options: ModelLabelGuardOptions = {}): ModelLabelGuard {
  const maxModelLabels = options.maxModelLabels ?? 200;
  if (!Number.isSafeInteger(maxModelLabels) || maxModelLabels < 0) {
    throw new RangeError(`maxModelLabels must be a non-negative integer, got ${maxModelLabels}`);
  }
  return new BoundedModelLabelGuard(maxModelLabels);
}

class BoundedModelLabelGuard implements ModelLabelGuard {
  readonly #maxModelLabels: number;
  /** The admitted models. Never holds more than `#maxModelLabels`; nothing is ever removed. */
  readonly #admitted = new Set<ModelId>();

  constructor(maxModelLabels: number) {
    this.#maxModelLabels = maxModelLabels;
  }

  labelFor(model: ModelId): string {
    if (this.#admitted.has(model)) return model;
    if (
      this.#admitted.size >= this.#maxModelLabels ||
      model.length === 0 ||
      model.length > MAX_NAME_LENGTH
    ) {
      return OTHER_MODEL_LABEL;
    }
    this.#admitted.add(model);
    return model;
  }
}
