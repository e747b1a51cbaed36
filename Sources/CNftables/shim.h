// libnftables (Debian's libnftables-dev): nft's own parser and evaluator, kept in-process so a
// sync does not pay for starting nft and re-reading the ruleset for every change.
#ifndef LABNODE_CNFTABLES_SHIM_H
#define LABNODE_CNFTABLES_SHIM_H
#include <nftables/libnftables.h>
#endif
