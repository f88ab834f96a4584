// DLPack's ABI structs and constants, the part the binding reads.
#pragma once

#include <cstdint>

namespace nwpy __attribute__((visibility("hidden"))) {

// DLPack's ABI (dlpack.h, stable since v0.6; versioned capsules since v1.0).
namespace dl {
struct Device {
    int32_t device_type;
    int32_t device_id;
};
struct DataType {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
};
struct Tensor {
    void *data;
    Device device;
    int32_t ndim;
    DataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
};
struct ManagedTensor {
    Tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(ManagedTensor *);
};
struct Version {
    uint32_t major;
    uint32_t minor;
};
struct ManagedTensorVersioned {
    Version version;
    void *manager_ctx;
    void (*deleter)(ManagedTensorVersioned *);
    uint64_t flags;
    Tensor dl_tensor;
};
constexpr int32_t kCPU = 1;
// ManagedTensorVersioned::flags (DLPack 1.0).
constexpr uint64_t kFlagReadOnly = uint64_t{1} << 0;  // the consumer must not write
constexpr uint64_t kFlagIsCopied = uint64_t{1} << 1;  // the export is a copy of the producer's data
constexpr uint8_t kFloat = 2;
constexpr uint8_t kBfloat = 4;
}  // namespace dl

}  // namespace nwpy
