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
 * Bounds the `model` label's cardinality. Each distinct label value is a time series Prometheus
 * keeps, and lookups carry whatever model name a gateway's client sent. So only writes admit a
 * model (adapters report what engines really serve), up to `maxModelLabels` for the life of the
 * process; lookups for a model no write has admitted are counted under `_other`, and so cannot
 * crowd real models out of their labels.
 */
export interface ModelLabelGuard {
  /**
   * Gives `model` a label of its own if there is room (first come, first kept) and returns the label
   * to report it under. A name the index would reject (empty, or longer than {@link MAX_NAME_LENGTH})
   * never takes a label of its own. Cost: one set look-up.
   */
  admit(model: ModelId): string;

  /** The label `model` is reported under, without admitting it: itself if admitted, else `_other`. */
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
    return this.#admitted.has(model) ? model : OTHER_MODEL_LABEL;
  }

  admit(model: ModelId): string {
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
