# The README's two commands are `make run` and `make test`; the rest are conveniences.
.PHONY: run test bench soak lint clean

# `make run NODES=3` (or `NODES=3 make run`): three simulated nodes on this machine, one agent each.
NODES ?= 1

run:
	NODES=$(NODES) bash scripts/run.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

soak:
	NETDASH_SOAK=1 bash scripts/test.sh -m slow tests/faults
	NETDASH_SOAK=1 bash scripts/test.sh tests/security/test_fuzz.py tests/security/test_schemathesis.py

lint:
	.venv/bin/ruff check .

clean:
	rm -rf var artifacts .pytest_cache .ruff_cache
