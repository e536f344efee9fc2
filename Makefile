# The two commands: `make run` (default benchmark on the best device) and `make test` (build + every test).
# Both install what is missing first (Debian packages via apt-get, Python packages via pip) and say so.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PRESET ?= release

.PHONY: run test deps py-deps build build-asan test-asan test-python bench-cpu gpu-check format clean

deps:
	@bash scripts/install_deps.sh

# Python packages of the tests and benchmarks (torch, numpy, pytest, nanobind) from PyPI.
py-deps:
	@bash scripts/install_deps.sh --python

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

# The default suite's JSON goes to build/ (untracked); RUN_JSON=bench/results/<machine>/default.json refreshes
# the committed sample.
RUN_JSON ?= build/results/default.json
run: build
	./build/$(PRESET)/apps/omniattn/omniattn bench --json $(RUN_JSON)

# Release tests, the Python tests, then the CPU tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
# py-deps first: nanobind must be there when CMake configures, or the extension is skipped.
test: py-deps build
	ctest --preset $(PRESET) -j $(JOBS)
	$(MAKE) --no-print-directory test-python
	$(MAKE) --no-print-directory test-asan

# pytest on the package the build tree holds (build/<preset>/python), no install needed.
PY_PKG := build/$(PRESET)/python
test-python: py-deps build
	@ls $(PY_PKG)/omniattn/_C*.so >/dev/null 2>&1 || { echo "[omniattn] the Python extension was not built: see the 'omniattn: Python extension' line of the CMake output"; exit 1; }
	PYTHONPATH=$(PY_PKG) python3 -m pytest -q tests/python

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
