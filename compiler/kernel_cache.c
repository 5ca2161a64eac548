/* kernel_cache.c: the files of the kernel cache. An entry is
 *     "GMCKOBJ1" | key length (u64) | data length (u64) | FNV-1a 64 of key and data (u64)
 *     | key | data
 * in DIR/<hash of key>.<ext>; anything that does not match exactly (short file, other key,
 * wrong checksum) is a miss and gets overwritten by the next store. render_llvm.c keeps two
 * kinds: .o, an object file of several kernels, and .k, one kernel's entry naming the
 * object it is in.
 *
 * Pruning: every entry read is touched, so an entry's mtime is when it was last stored or
 * used. A run that stores entries then checks the directory's disk usage (kcache_prune):
 * over the cap, the least recently used entries go, oldest first, until it is under three
 * quarters of the cap (so the next runs do not prune again at once). Entries of older
 * builds of gmc (whose key differs) and of programs no longer run age out this way. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "fsutil.h"
#include "kernel_cache.h"

static const char MAGIC[8] = { 'G', 'M', 'C', 'K', 'O', 'B', 'J', '1' };

int kcache_default_dir(char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (xdg && *xdg) len = snprintf(out, n, "%s/gmc", xdg);
    else if (home && *home) len = snprintf(out, n, "%s/.cache/gmc", home);
    else return -1;
    if (len < 0 || (size_t)len >= n) return -1;
    return mkdir_p(out);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

void kcache_hash(const char *key, char out[33]) {
    size_t n = strlen(key);
    uint64_t a = fnv1a(1469598103934665603ull, (const unsigned char *)key, n);
    uint64_t b = fnv1a(0x9E3779B97F4A7C15ull, (const unsigned char *)key, n);
    b ^= b >> 29;                 /* the second half from another seed, mixed */
    b *= 0xBF58476D1CE4E5B9ull;
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static void entry_path(const char *dir, const char *key, const char *ext, char *path, size_t n) {
    char h[33];
    kcache_hash(key, h);
    snprintf(path, n, "%s/%s.%s", dir, h, ext);
}

static uint64_t checksum(const char *key, size_t keylen, const unsigned char *obj, size_t n) {
    return fnv1a(fnv1a(1469598103934665603ull, (const unsigned char *)key, keylen), obj, n);
}

unsigned char *kcache_load(const char *dir, const char *key, const char *ext, size_t *n) {
    char path[2048], err[256];
    entry_path(dir, key, ext, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;          /* the common miss: no entry; not worth an error */
    fclose(f);
    unsigned char *data;
    size_t size;
    if (read_file_all(path, &data, &size, err, sizeof err) != 0) return NULL;
    size_t keylen = strlen(key);
    uint64_t hdr[3];
    unsigned char *obj = NULL;
    if (size >= 32) memcpy(hdr, data + 8, sizeof hdr);
    if (size >= 32 && !memcmp(data, MAGIC, 8) && hdr[0] == keylen && hdr[1] <= size &&
        size == 32 + keylen + hdr[1] && !memcmp(data + 32, key, keylen) &&
        hdr[2] == checksum(key, keylen, data + 32 + keylen, hdr[1]) && hdr[1] > 0) {
        obj = malloc(hdr[1]);
        if (obj) { memcpy(obj, data + 32 + keylen, hdr[1]); *n = hdr[1]; }
        utimensat(AT_FDCWD, path, NULL, 0);   /* used now: pruning keeps it longest */
    }
    free(data);
    return obj;
}

int kcache_store(const char *dir, const char *key, const char *ext, const void *obj, size_t n) {
    char path[2048];
    entry_path(dir, key, ext, path, sizeof path);
    size_t keylen = strlen(key), size = 32 + keylen + n;
    unsigned char *data = malloc(size);
    if (!data) return -1;
    uint64_t hdr[3] = { keylen, n, checksum(key, keylen, obj, n) };
    memcpy(data, MAGIC, 8);
    memcpy(data + 8, hdr, sizeof hdr);
    memcpy(data + 32, key, keylen);
    memcpy(data + 32 + keylen, obj, n);
    /* a temp file renamed over the entry: readers never see half an entry. No fsync: after a
     * crash an entry is at worst damaged, and a damaged entry is a miss. */
    char tmp[2100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int rc = f && fwrite(data, 1, size, f) == size ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc != 0 && f) remove(tmp);
    free(data);
    return rc;
}

/* An entry's name: 32 hex digits, a dot, o or k; a temp file is that, a dot, a pid, ".tmp".
 * Nothing else in the directory is ever removed. */
static int entry_name(const char *name, int *is_tmp) {
    for (int i = 0; i < 32; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    if (name[32] != '.' || (name[33] != 'o' && name[33] != 'k')) return 0;
    *is_tmp = name[34] != '\0';
    if (!*is_tmp) return 1;
    size_t n = strlen(name);
    return name[34] == '.' && n > 39 && !strcmp(name + n - 4, ".tmp");
}

typedef struct Entry { time_t mtime; uint64_t bytes; char name[64]; } Entry;

static int older_first(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}

uint64_t kcache_max_bytes(void) {
    const char *env = getenv("GMC_KERNEL_CACHE_MB");
    char *end;
    double mb = env && *env ? strtod(env, &end) : -1;
    if (!env || !*env || *end || mb < 0) mb = KCACHE_DEFAULT_MB;
    return (uint64_t)(mb * 1024 * 1024);
}

int kcache_prune(const char *dir, uint64_t max_bytes) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    Entry *es = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    time_t now = time(NULL);
    char path[2048];
    int removed = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        int is_tmp;
        struct stat st;
        if (strlen(de->d_name) >= sizeof es->name || !entry_name(de->d_name, &is_tmp)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (is_tmp) {   /* left by a run that died while storing; a live one renames in ms */
            if (now - st.st_mtime > 3600 && remove(path) == 0) removed++;
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            Entry *grown = realloc(es, cap * sizeof *es);
            if (!grown) { free(es); closedir(d); return -1; }
            es = grown;
        }
        es[n].mtime = st.st_mtime;
        es[n].bytes = (uint64_t)st.st_blocks * 512;   /* what the entry costs on disk */
        snprintf(es[n].name, sizeof es[n].name, "%s", de->d_name);
        total += es[n].bytes;
        n++;
    }
    closedir(d);
    if (total > max_bytes) {
        qsort(es, n, sizeof *es, older_first);
        for (size_t i = 0; i < n && total > max_bytes / 4 * 3; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, es[i].name);
            if (remove(path) == 0) removed++;
            total -= es[i].bytes;
        }
    }
    free(es);
    return removed;
}
