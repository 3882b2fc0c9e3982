# The front door: `make up` runs the stack, `make test` runs every test against real services.
SHELL := /bin/bash
TSX := node --import tsx
# Node 20 runs here (the images run 22); the SDK's notice about its future Node 22 floor is noise in every log.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
TEST_FILES = $(shell find lib db functions ingest-gateway infra test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
# The fast layer: pure rules (*.unit.test.ts) and claim races against PostgreSQL alone; no NATS, no object store.
UNIT_FILES = $(shell find lib db functions ingest-gateway infra test -name '*.unit.test.ts' -not -path '*/node_modules/*' | sort)

.PHONY: up infra down status install test test-unit typecheck bench sweep migrate drop provision
.PHONY: test-fuzz test-faults soak

up: ## install what is missing, start everything, provision, migrate
	@bash infra/stack.sh up all

infra: ## only the services (NATS, object store, PostgreSQL), provisioned
	@bash infra/stack.sh up infra

down:
	@bash infra/stack.sh down

status:
	@bash infra/stack.sh status

install:
	@bash infra/install.sh

provision:
	@$(TSX) infra/provision.ts

migrate:
	@$(TSX) db/migrate.ts

sweep:
	@$(TSX) functions/sweep/main.ts --once

typecheck:
	@npx --no-install tsc -p .

test-unit: ## the fast layer (under 30 s): pure rules, and claim races on PostgreSQL (started alone if needed)
	@bash infra/stack.sh up postgres
	@$(TSX) --test --test-concurrency=4 --test-timeout=60000 $(UNIT_FILES)

test: ## everything, starting what it needs
	@bash infra/stack.sh up infra
	@npx --no-install tsc -p .
	@$(TSX) --test --test-concurrency=1 --test-timeout=600000 $(TEST_FILES)

test-fuzz: ## Schemathesis against both OpenAPI documents, longer than the bounded run inside make test
	@bash infra/stack.sh up infra
	@FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-1000} $(TSX) --test --test-concurrency=1 --test-timeout=1800000 test/fuzz/schemathesis.test.ts

test-faults: ## services stopped and killed under load, on private stacks (slow; not part of make test)
	@bash infra/stack.sh up infra
	@$(TSX) --test --test-concurrency=1 --test-timeout=1800000 $(sort $(wildcard test/faults/*.fault.ts))

soak: ## SRT streams dropping and returning, folders dropped, replicas killed, for SOAK_MINUTES (default 10)
	@bash infra/stack.sh up infra
	@$(TSX) test/soak/soak.ts

bench:
	@bash infra/stack.sh up infra
	@$(TSX) bench/run.ts

drop:
	@test -n "$(DIR)" || { echo "usage: make drop DIR=path/to/hls-folder [PREFIX=name/in/bucket]"; exit 2; }
	@$(TSX) functions/drop/main.ts "$(DIR)" $(if $(PREFIX),--prefix "$(PREFIX)")
