import { Code, ConnectError } from "@connectrpc/connect";
import { IndexError, type IndexErrorReason } from "../core/index-error.js";

const CODE_FOR_REASON: Record<IndexErrorReason, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "resource-exhausted": Code.ResourceExhausted,
};

/**
 * The one place core errors become statuses: an {@link IndexError} becomes a `ConnectError` with
 * the matching code and the core's message (which names the field), and anything else is rethrown
 * untouched for the transport to answer INTERNAL and log. Connect's codes are gRPC's numbers.
 */
export function toStatusError(error: unknown): never {
  if (error instanceof IndexError) {
    throw new ConnectError(error.message, CODE_FOR_REASON[error.reason]);
  }
  throw error;
}
