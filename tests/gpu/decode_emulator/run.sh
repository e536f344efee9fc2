#!/usr/bin/env bash
# The decode kernels under the host emulation: tests/gpu/run_emulated.sh decode [--gtest_filter=...]
exec bash "$(dirname "$0")/../run_emulated.sh" decode "$@"
