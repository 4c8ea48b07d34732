import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import { healthFileDescriptor } from "./health-file-descriptor.js";

type ReflectionPackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

/**
 * Creates gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) describing `services` and
 * `grpc.health.v1.Health`, so `buf curl` and grpcurl can list and call methods without proto files.
 *
 * @grpc/reflection only reads the `fileDescriptorProtos` of each package-definition entry, so the
 * descriptors come straight from protobuf-es: every service's file and, recursively, the files it
 * imports (e.g. `google/protobuf/timestamp.proto`), plus `healthFileDescriptor`. Built once, at
 * server construction.
 */
export function createGrpcReflection(services: readonly DescService[]): ReflectionService {
  const fileDescriptorProtos: Buffer[] = [];
  const seen = new Set<string>();
  const addFile = (file: DescFile): void => {
    if (seen.has(file.name)) {
      return;
    }
    seen.add(file.name);
    for (const dependency of file.dependencies) {
      addFile(dependency);
    }
    fileDescriptorProtos.push(toBuffer(toBinary(FileDescriptorProtoSchema, file.proto)));
  };
  for (const service of services) {
    addFile(service.file);
  }
  fileDescriptorProtos.push(toBuffer(toBinary(FileDescriptorProtoSchema, healthFileDescriptor)));
  const packageDefinition: ReflectionPackageDefinition = {
    // Keys are not read; any entry's descriptors are indexed by their own file names.
    protobufEs: { format: "Protocol Buffer 3 DescriptorProto", type: {}, fileDescriptorProtos },
  };
  return new ReflectionService(packageDefinition);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
