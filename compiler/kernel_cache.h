/* kernel_cache.h: compiled kernels on disk, entries named by a hash of their key (for a
 * kernel, everything that decides its machine code: the kernel's canonical text, the LLVM
 * version, the CPU and its features, the build of gmc's code generator). An entry carries
 * its whole key and a checksum, so a collision or a damaged file reads as a miss. */
#ifndef GMC_KERNEL_CACHE_H
#define GMC_KERNEL_CACHE_H
#include <stddef.h>
#include <stdint.h>

/* the cap on the cache's disk usage unless GMC_KERNEL_CACHE_MB says otherwise */
#define KCACHE_DEFAULT_MB 64

/* $XDG_CACHE_HOME/gmc, else $HOME/.cache/gmc; created if missing. 0, or -1 (no cache). */
int kcache_default_dir(char *out, size_t n);
/* a 128-bit hash of key as 32 hex digits (a file name and a symbol name) */
void kcache_hash(const char *key, char out[33]);
/* the data stored under key in dir/<hash>.ext, malloc'ed (*n bytes), or NULL: missing or invalid */
unsigned char *kcache_load(const char *dir, const char *key, const char *ext, size_t *n);
/* stores data under key, atomically (a reader sees the old entry or the new one); 0 or -1 */
int kcache_store(const char *dir, const char *key, const char *ext, const void *data, size_t n);
/* the cap in bytes: GMC_KERNEL_CACHE_MB (megabytes, may be fractional), else the default */
uint64_t kcache_max_bytes(void);
/* Over max_bytes of disk usage, removes the least recently used entries (by mtime: stored or
 * loaded) until under 3/4 of it; also temp files an hour old. Touches only files named like
 * entries. The number of files removed, or -1 (no directory). */
int kcache_prune(const char *dir, uint64_t max_bytes);
#endif
