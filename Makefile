# The two commands a newcomer needs: `make run` and `make test`.
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help deps run demo test fmt clippy bench vectors fuzz-build clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

deps: ## Install what is missing (idempotent)
	@scripts/install-deps.sh

run: deps ## A local 4-node cluster: DKG, then encrypt/decrypt through the client; Ctrl-C stops
	scripts/devnet-demo.sh

demo: deps ## The cryptography walk-through (no network)
	$(CARGO) run --release --locked -p kms-crypto --example demo

test: deps ## The whole suite: formatting, lints, contracts, all tests (what CI runs)
	$(CARGO) fmt --all -- --check
	scripts/check-contracts.sh
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	scripts/check-fuzz.sh
	$(CARGO) nextest run --workspace --locked
	$(CARGO) test --workspace --doc --locked

fmt: ## Format the code
	$(CARGO) fmt --all

clippy: ## Lints, warnings as errors
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

bench: ## Criterion benchmarks of the primitives and the session benchmark table
	$(CARGO) bench -p kms-crypto
	$(CARGO) run --release --locked -p kms-protocol --example session-bench -- --rounds 3
	$(CARGO) run --release --locked -p kms-protocol --example v2-session-bench -- --sizes 7,10,15,50,100 --rounds 3
	$(CARGO) run --release --locked -p kms-protocol --example v2-sweep -- --runs 10

vectors: ## Regenerate the known-answer vectors (only for an intended format change)
	KMS_REGENERATE_VECTORS=1 $(CARGO) test -p kms-crypto --test vectors

fuzz-build: ## Build the fuzz targets of crypto and protocol (needs cargo-fuzz and a nightly toolchain)
	@if $(CARGO) fuzz --version >/dev/null 2>&1; then \
	(cd crypto/fuzz && $(CARGO) +nightly fuzz build) && (cd protocol/fuzz && $(CARGO) +nightly fuzz build); \
	else echo "cargo-fuzz missing: cargo install --locked cargo-fuzz"; fi

clean: ## Remove build outputs
	$(CARGO) clean

.PHONY: image image-smoke image-repro

image: ## Enclave image: reproducible TDX guest disk, UKI, measurements (as root; enclave-image/README.md)
	enclave-image/build.sh

image-smoke: ## Boot both built profiles under QEMU (software emulation) and check kms-node (dev: /health ok; production: locked, quote path)
	SMOKE_PROFILE=dev enclave-image/smoke-test.sh
	SMOKE_PROFILE=production enclave-image/smoke-test.sh

image-repro: ## Build the image twice from the same commit and require identical outputs (slow)
	enclave-image/repro-test.sh
