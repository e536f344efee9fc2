#pragma once
// Validation of block masks, shared by omniattn::validate and the attention entry points (which name the
// mask "options.block_mask" in their errors).
#include <string>

#include "omniattn/mask.hpp"

namespace omniattn::detail {

/// Every check of omniattn::validate on a CPU view; errors name `name` + "." + the field.
void validate_block_mask(const BlockMaskView& mask, const std::string& name);

}  // namespace omniattn::detail
