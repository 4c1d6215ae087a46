# The README's two commands: `make lab` runs slolab, `make test` installs what
# the tests need and runs the whole gate (the same command CI runs).
.PHONY: lab test bench build image

lab:
	go run ./cmd/slolab lab

test:
	./scripts/test.sh

# make bench BENCH_FLAGS='-rounds 5' passes flags to go run ./bench.
bench:
	./bench/run.sh $(BENCH_FLAGS)

build:
	go build -o bin/slolab ./cmd/slolab

# make image writes bin/slolab-image.tar (OCI layout and docker-save archive in
# one, non-root, empty base) without a Docker daemon: docker load -i, crane push.
image:
	go run ./scripts/image -o bin/slolab-image.tar $(IMAGE_FLAGS)
