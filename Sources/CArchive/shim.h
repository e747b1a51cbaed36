#ifndef LABNODE_CARCHIVE_SHIM_H
#define LABNODE_CARCHIVE_SHIM_H

#include <archive.h>
#include <archive_entry.h>

/* Glibc's Swift module does not export the xattr calls, which unpacking needs to mark
   overlayfs opaque directories; they ride along here to avoid a second C module. */
#include <sys/xattr.h>

/* libarchive spells the file-type constants as casted macros, which Swift cannot import;
   these constants carry the same values under names Swift can see. */
static const unsigned int labnode_ae_ifreg = AE_IFREG;
static const unsigned int labnode_ae_ifdir = AE_IFDIR;
static const unsigned int labnode_ae_iflnk = AE_IFLNK;
static const unsigned int labnode_ae_ifchr = AE_IFCHR;

#endif
