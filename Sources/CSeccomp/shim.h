// libseccomp for Swift. SCMP_ACT_ERRNO is a function-like macro, which Swift
// cannot import, so it is re-exposed as an inline function.
#ifndef LABNODE_CSECCOMP_SHIM_H
#define LABNODE_CSECCOMP_SHIM_H
#include <seccomp.h>
#include <stdint.h>

static inline uint32_t labnode_scmp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }
static inline uint32_t labnode_scmp_act_allow(void) { return SCMP_ACT_ALLOW; }
#endif
