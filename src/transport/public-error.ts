import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Receives an error a handler threw that was not a `ConnectError`: a bug, not a caller's mistake.
 * `method` is the RPC's full name, e.g. `inferencecache.v1.CacheIndexService/LookupRoute`.
 * Meant for logging; it must not throw.
 */
export type UnexpectedErrorHandler = (error: unknown, method: string) => void;

/** The default {@link UnexpectedErrorHandler}: drops the error. */
export function ignoreUnexpectedError(): void {}

/** The default largest message either server receives or sends: 4 MiB, as gRPC's own default. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/**
 * The largest `maxMessageBytes` either server takes: protobuf's own limit on a message, 2 GiB - 1
 * (connect-node refuses a limit over 2^32 - 1 when it starts).
 */
export const MAX_MESSAGE_BYTES = 2 ** 31 - 1;

/**
 * What a client is told when a handler fails unexpectedly. Deliberately generic: the thrown error's
 * message may hold internals, so it goes to `onUnexpectedError` instead.
 */
export const internalErrorMessage = "internal error";

/**
 * Turns whatever a handler threw into the error a client may see. This is the one place both
 * transports decide what leaves the process:
 *
 * - a `ConnectError` is the handler's answer and passes through unchanged (its code and message
 *   are meant for the caller, e.g. `invalid_argument: tenant is required`);
 * - anything else is reported to `onUnexpectedError` and replaced by an `internal` error with a
 *   generic message, so nothing reaches a client as `unknown` or with a stack's worth of detail.
 *
 * The gRPC transport sends the result's `code` as the status (Connect's `Code` values are the gRPC
 * status numbers) and its `rawMessage` as the details.
 */
export function toPublicError(
  error: unknown,
  method: string,
  onUnexpectedError: UnexpectedErrorHandler,
): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  onUnexpectedError(error, method);
  return new ConnectError(internalErrorMessage, Code.Internal);
}
