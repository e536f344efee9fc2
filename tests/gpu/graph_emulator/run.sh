#!/usr/bin/env bash
# The graph kernels under the host emulation: tests/gpu/run_emulated.sh graph [--gtest_filter=...]
exec bash "$(dirname "$0")/../run_emulated.sh" graph "$@"
