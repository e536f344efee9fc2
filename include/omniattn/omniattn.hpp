#pragma once
/// @file omniattn.hpp
/// Everything of omniattn's public API.
#include "omniattn/attention.hpp"
#include "omniattn/decode.hpp"
#include "omniattn/device_mask.hpp"
#include "omniattn/error.hpp"
#include "omniattn/kv_cache.hpp"
#include "omniattn/tensor.hpp"
#include "omniattn/version.hpp"
