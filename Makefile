# The two commands a newcomer types (see README.md):
#   sudo make up     install system packages, build, install labnode, start the cluster
#   sudo make test   install test tools, build, run every test
.PHONY: up test down bench

up:
	scripts/setup
	install -m 0755 .build/release/labnode /usr/local/bin/labnode
	# The image recipes `labnode image build` reads when installed (images/README.md).
	mkdir -p /usr/local/share/labnode
	rm -rf /usr/local/share/labnode/images && cp -r images /usr/local/share/labnode/images
	# The labs `labnode lab` reads (the binary carries a copy too; this one can be edited).
	rm -rf /usr/local/share/labnode/labs && cp -r labs /usr/local/share/labnode/labs
	/usr/local/bin/labnode up

test:
	scripts/setup --test
	scripts/test

down:
	/usr/local/bin/labnode down

# labnode beside its peers in one run (`labnode bench`: start-up, pods against crun, the proxy
# against iptables-restore and nft, DNS against unbound, the API against nginx), then the scripts
# it does not run (controllers against etcd, exec, port-forward). Installs the peers first.
bench:
	scripts/setup --bench
	.build/release/labnode bench
	Benchmarks/controllers.sh
	Benchmarks/exec.sh
	Benchmarks/portforward.sh
