#!/usr/bin/env bash
# The iptables service proxy at scale (issue 6): a full sync through labnode's proxier of N
# services x 3 endpoints, then one endpoint change (a partial sync), against the kernel tools
# loading the very text the proxier wrote, from a file, same run: `iptables-restore --noflush`
# (what the proxier runs) and, when nft is installed, `nft -f` of the same rules translated by
# iptables-restore-translate. Then the nftables mode: labnode's full sync and one endpoint change
# (a delta) against the nft CLI given the same table and delta from files.
#
#   Benchmarks/proxy.sh [--quick]      (root; LABNODE=path/to/labnode; SIZES="1000 10000")
#
# --quick: 100 and 1,000 services. Inside a network namespace this script creates.
# Writes Benchmarks/results/proxy.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LABNODE=${LABNODE:-.build/release/labnode}
SIZES=${SIZES:-1000 10000}
[ "${1:-}" = "--quick" ] && SIZES="100 1000"
[ -x "$LABNODE" ] || { echo "bench: no labnode at $LABNODE; build it with: swift build -c release" >&2; exit 2; }
command -v iptables-restore >/dev/null || { echo "bench: iptables-restore is missing; scripts/setup installs it (iptables)" >&2; exit 2; }
NFT=0
command -v nft >/dev/null && command -v iptables-restore-translate >/dev/null && NFT=1
source Benchmarks/lib.sh
bench_start lnbench-proxy

elapsed_ms() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
# Restoring empty tables without --noflush removes every rule and chain in them.
empty_tables() { printf '*filter\nCOMMIT\n*nat\nCOMMIT\n' | in_ns iptables-restore -w 5; }
# iptables-restore-translate 1.8.9 drops `-p tcp` when `-m tcp` has no options of its own, and
# nft then refuses `dnat to IP:port`: put the protocol back (every bench service is TCP).
to_nft() { iptables-restore-translate -f "$1" | sed 's/ counter dnat to / meta l4proto tcp counter dnat to /'; }

mkdir -p Benchmarks/results
{
    echo "# service proxy benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(iptables --version))"
    echo
    echo "| services x 3 endpoints | rules | labnode | peer in the same run | ratio labnode/peer |"
    echo "|---|---|---|---|---|"
} > Benchmarks/results/proxy.md

for n in $SIZES; do
    result=$(in_ns "$LABNODE" bench proxy-sync --services "$n" --endpoints 3 \
        --rules-file "$WORK/full.rules" --change-file "$WORK/change.rules")
    full=$(field "$result" full_sync_ms)
    one=$(field "$result" one_change_ms)
    rules=$(grep -c '^-A' "$WORK/full.rules")

    # proxy-sync removed what it added: the peer loads the same text into the same empty tables.
    t0=$(date +%s%N); in_ns iptables-restore -w 5 --noflush < "$WORK/full.rules"; ipt_full=$(elapsed_ms "$t0")
    t0=$(date +%s%N); in_ns iptables-restore -w 5 --noflush < "$WORK/change.rules"; ipt_one=$(elapsed_ms "$t0")
    empty_tables

    peer="\`iptables-restore --noflush\` of the same text from a file"
    row "proxy-full-$n" "proxy full sync, $n services x 3 endpoints ($rules rules)" "$full" ms "$peer" "$ipt_full"
    row "proxy-change-$n" "proxy one endpoint change at $n services" "$one" ms "$peer" "$ipt_one"
    echo "| $n full sync | $rules | $full ms | iptables-restore --noflush: $ipt_full ms | $(awk -v a="$full" -v b="$ipt_full" 'BEGIN{printf "%.2f", a/b}') |" >> Benchmarks/results/proxy.md
    echo "| $n one endpoint change | | $one ms | iptables-restore --noflush: $ipt_one ms | $(awk -v a="$one" -v b="$ipt_one" 'BEGIN{printf "%.2f", a/b}') |" >> Benchmarks/results/proxy.md

    if [ $NFT -eq 1 ]; then
        to_nft "$WORK/full.rules" > "$WORK/full.nft"
        t0=$(date +%s%N); in_ns nft -f "$WORK/full.nft"; nft_full=$(elapsed_ms "$t0")
        in_ns nft flush ruleset
        row "proxy-full-$n-nft" "proxy full sync, $n services x 3 endpoints" "$full" ms "\`nft -f\` of the same rules (iptables-restore-translate)" "$nft_full"
        echo "| $n full sync | $rules | $full ms | nft -f (translated): $nft_full ms | $(awk -v a="$full" -v b="$nft_full" 'BEGIN{printf "%.2f", a/b}') |" >> Benchmarks/results/proxy.md
    fi

    # The nftables mode (issue 6): labnode's proxier replaces the whole ip kube-proxy table by one
    # `nft -f`, then sends each change as a delta in-process (libnftables + nf_tables netlink);
    # the peer is the nft CLI given the same texts from files (the table, then the same delta).
    if command -v nft >/dev/null; then
        result=$(in_ns "$LABNODE" bench proxy-sync --mode nftables --services "$n" --endpoints 3 \
            --rules-file "$WORK/table.nft" --change-file "$WORK/delta.nft")
        tfull=$(field "$result" full_sync_ms)
        tone=$(field "$result" one_change_ms)
        t0=$(date +%s%N); in_ns nft -f "$WORK/table.nft"; cli_full=$(elapsed_ms "$t0")
        t0=$(date +%s%N); in_ns nft -f "$WORK/delta.nft"; cli_one=$(elapsed_ms "$t0")
        in_ns nft delete table ip kube-proxy
        row "proxy-nft-full-$n" "nftables proxy full sync, $n services x 3 endpoints" "$tfull" ms "\`nft -f\` of the same table from a file" "$cli_full"
        row "proxy-nft-change-$n" "nftables proxy one endpoint change at $n services" "$tone" ms "the \`nft\` CLI applying the same delta from a file" "$cli_one"
        echo "| $n nftables full sync | | $tfull ms | nft -f of the same table: $cli_full ms | $(awk -v a="$tfull" -v b="$cli_full" 'BEGIN{printf "%.2f", a/b}') |" >> Benchmarks/results/proxy.md
        echo "| $n nftables one endpoint change | | $tone ms | nft CLI, same delta: $cli_one ms | $(awk -v a="$tone" -v b="$cli_one" 'BEGIN{printf "%.2f", a/b}') |" >> Benchmarks/results/proxy.md
    fi
done
cat Benchmarks/results/proxy.md
