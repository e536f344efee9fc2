# The two commands: `make run` (default benchmark on the best device) and `make test` (build + every test).
# Both install what is missing first (Debian packages via apt-get, Python packages via pip) and say so.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PRESET ?= release

.PHONY: run test deps build build-asan test-asan bench-cpu gpu-check format clean

deps:
	@bash scripts/install_deps.sh

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

# The default suite's JSON goes to build/ (untracked); RUN_JSON=bench/results/<machine>/default.json refreshes
# the committed sample.
RUN_JSON ?= build/results/default.json
run: build
	./build/$(PRESET)/apps/omniattn/omniattn bench --json $(RUN_JSON)

# Release tests, then the CPU tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: build
	ctest --preset $(PRESET) -j $(JOBS)
	$(MAKE) --no-print-directory test-asan

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS) --target omniattn_tests

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j $(JOBS)

# CPU benchmark against PyTorch (installs torch from PyPI if missing).
bench-cpu: build
	@bash scripts/install_deps.sh --python
	python3 bench/cpu_vs_torch.py --cli ./build/$(PRESET)/apps/omniattn/omniattn

# On the GPU machine: build with all cores, GPU tests, sanitizers, benchmarks with the peers; logs + JSON to $OUT.
gpu-check:
	bash scripts/gpu_check.sh

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp' '*.cu' '*.cuh')

clean:
	rm -rf build
