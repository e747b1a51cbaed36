# The two commands a newcomer types (see README.md):
#   sudo make up     install system packages, build, start the cluster
#   sudo make test   install test tools, build, run every test
.PHONY: up test down

up:
	scripts/setup
	.build/release/labnode up

test:
	scripts/setup --test
	scripts/test

down:
	.build/release/labnode down
