import { create } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";

const optional = Label.OPTIONAL;

/**
 * The descriptor of `grpc/health/v1/health.proto` as grpc-health-check 2.1.0 serves it (Check,
 * Watch and List), for server reflection.
 *
 * Written out by hand because the descriptor grpc-health-check loads through proto-loader is not
 * one other tools accept: its type names are relative and its map entry is not named
 * `StatusesEntry`, so `buf curl` rejects the file and cannot find the service.
 */
export const healthFileDescriptor: FileDescriptorProto = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    { name: "HealthCheckRequest", field: [field("service", 1, Type.STRING)] },
    {
      name: "HealthCheckResponse",
      field: [field("status", 1, Type.ENUM, ".grpc.health.v1.HealthCheckResponse.ServingStatus")],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
    { name: "HealthListRequest" },
    {
      name: "HealthListResponse",
      field: [
        {
          ...field("statuses", 1, Type.MESSAGE, ".grpc.health.v1.HealthListResponse.StatusesEntry"),
          label: Label.REPEATED,
        },
      ],
      nestedType: [
        {
          name: "StatusesEntry",
          field: [
            field("key", 1, Type.STRING),
            field("value", 2, Type.MESSAGE, ".grpc.health.v1.HealthCheckResponse"),
          ],
          options: { mapEntry: true },
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [
        {
          name: "Check",
          inputType: ".grpc.health.v1.HealthCheckRequest",
          outputType: ".grpc.health.v1.HealthCheckResponse",
        },
        {
          name: "Watch",
          inputType: ".grpc.health.v1.HealthCheckRequest",
          outputType: ".grpc.health.v1.HealthCheckResponse",
          serverStreaming: true,
        },
        {
          name: "List",
          inputType: ".grpc.health.v1.HealthListRequest",
          outputType: ".grpc.health.v1.HealthListResponse",
        },
      ],
    },
  ],
});

function field(name: string, number: number, type: Type, typeName?: string) {
  const jsonName = name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
  return { name, number, type, label: optional, jsonName, ...(typeName ? { typeName } : {}) };
}
