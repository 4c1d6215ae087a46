# The README's two commands: `make lab` runs slolab, `make test` installs what
# the tests need and runs the whole gate (the same command CI runs).
.PHONY: lab test bench build

lab:
	go run ./cmd/slolab lab

test:
	./scripts/test.sh

bench:
	./bench/run.sh

build:
	go build -o bin/slolab ./cmd/slolab
