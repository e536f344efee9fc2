#pragma once
/// @file omniattn.hpp
/// Everything of omniattn's public API.
#include "omniattn/attention.hpp"
#include "omniattn/error.hpp"
#include "omniattn/tensor.hpp"
#include "omniattn/version.hpp"
