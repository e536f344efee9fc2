#include "cuda/common/tensor_map.hpp"

#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <string>

#include "cuda/common/cuda_check.hpp"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    check(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found),
          "cudaGetDriverEntryPointByVersion(cuTensorMapEncodeTiled)");
    if (found != cudaDriverEntryPointSuccess || f == nullptr)
      throw Error("cuda", "a driver that provides cuTensorMapEncodeTiled (CUDA 12+)", "no such entry point");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

}  // namespace

CUtensorMap make_tensor_map_4d(const Operand4d& o, int box_rows, const char* what) {
  constexpr int64_t kElement = 2;  // bytes: bf16 / f16
  // A size-1 dimension's stride is never used, but must still be a positive multiple of 16 bytes.
  auto stride_bytes = [&](int64_t extent, int64_t stride) {
    return static_cast<cuuint64_t>(extent > 1 ? stride * kElement : 16);
  };
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(o.dim), static_cast<cuuint64_t>(o.tokens),
                              static_cast<cuuint64_t>(o.heads), static_cast<cuuint64_t>(o.batches)};
  const cuuint64_t strides[3] = {stride_bytes(o.tokens, o.token), stride_bytes(o.heads, o.head),
                                 stride_bytes(o.batches, o.batch)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map{};
  const CUresult r = encode_function()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(o.data), dims,
                                       strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                       CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                       CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error(what, "an operand TMA can address (16-byte aligned start and strides, < 2^40 bytes)",
                "cuTensorMapEncodeTiled failed with CUresult " + std::to_string(static_cast<int>(r)));
  return map;
}

}  // namespace omniattn::detail::cuda
