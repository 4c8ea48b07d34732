import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

/**
 * A service whose every method is a synchronous unary handler: request message in, response message
 * out, a `ConnectError` thrown for a status other than OK. Both transports serve the same object:
 * connect-node registers it as is, the grpc-js adapter calls it with no per-call context, so a
 * handler never depends on one.
 */
export type UnaryServiceImpl<S> =
  S extends GenService<infer Methods extends GenServiceMethods>
    ? {
        [K in keyof Methods]: Methods[K]["input"] extends DescMessage
          ? Methods[K]["output"] extends DescMessage
            ? (request: MessageShape<Methods[K]["input"]>) => MessageShape<Methods[K]["output"]>
            : never
          : never;
      }
    : never;
