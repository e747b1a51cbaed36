// libcap (POSIX 1003.1e capabilities) for Swift.
#ifndef LABNODE_CCAP_SHIM_H
#define LABNODE_CCAP_SHIM_H
#include <sys/capability.h>
#endif
