# Strata: the two commands a user needs are `make run` and `make test`.
# Both install missing Debian packages first (tools/install-deps.sh), then build with CMake.

JOBS ?= $(shell nproc)
BUILD ?= build
ARGS ?=

.PHONY: all deps test-deps build run test test-plain test-asan test-tsan fuzz bench clean format

all: build

deps:
	@bash tools/install-deps.sh

# npm packages of the integration tests (the OpenTelemetry JS SDK), from the committed lockfile.
test-deps: deps
	@bash tools/install-test-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/strata serve $(ARGS)

# The whole suite: plain build, then AddressSanitizer+UBSan, then the concurrency
# tests under ThreadSanitizer, then a short run of every fuzz target. The OpenTelemetry JS SDK
# is installed first and required: its test fails instead of skipping when it cannot run.
test: deps test-deps test-plain test-asan test-tsan fuzz
test: export STRATA_REQUIRE_OTEL_JS = 1

test-plain:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=address >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

test-tsan:
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -L concurrency

fuzz:
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DSTRATA_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	cd build-fuzz && ctest --output-on-failure -L fuzz

bench: build
	./$(BUILD)/bench_chunk
	./$(BUILD)/bench_codecs

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
