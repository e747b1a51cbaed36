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
	/usr/local/bin/labnode up

test:
	scripts/setup --test
	scripts/test

down:
	/usr/local/bin/labnode down

# API, controller, node agent, proxy and DNS figures against nginx, etcd, crun, iptables-restore
# and unbound in the same run
# (installs the peers first).
bench:
	scripts/setup --bench
	Benchmarks/api.sh
	Benchmarks/controllers.sh
	Benchmarks/pods.sh
	Benchmarks/exec.sh
	Benchmarks/portforward.sh
	Benchmarks/proxy.sh
	Benchmarks/dns.sh
