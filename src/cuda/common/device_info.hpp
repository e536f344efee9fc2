#pragma once
// What the machine's CUDA devices are, queried once (no driver or no device: an empty list, not an error).
#include <vector>

namespace omniattn::detail::cuda {

/// Compute capability major version of each device (0 where the query failed).
const std::vector<int>& device_majors();
/// Major version of `device`, or 0 when there is no such device.
int device_major(int device);
/// Streaming multiprocessors of `device` (0 when unknown).
int device_multiprocessors(int device);
/// Largest dynamic shared memory a CTA may opt into on `device` (bytes; 0 when unknown).
int device_max_smem_optin(int device);

}  // namespace omniattn::detail::cuda
