/* data_sources.c: where examples come from. IDX pairs (Fashion-MNIST from Debian's
 * dataset-fashion-mnist package by default), folders of PNG/JPEG images (flat, or one
 * subfolder per class as torchvision's ImageFolder), .npy arrays with optional labels, and
 * text corpora read as bytes. Values are kept as read: pixels 0..255. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "data_internal.h"
#include "fsutil.h"
#include "idx.h"
#include "image_load.h"
#include "npy.h"
#include "progress.h"
#include "threads.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* --- IDX -------------------------------------------------------------------------------- */

static int load_idx(const DataSpec *s, int need_labels, Dataset *d, char *err, int errlen) {
    const char *dir = s->dir ? s->dir : !strcmp(s->source, "fashion_mnist") ? FASHION_DIR : NULL;
    if (!dir) {
        data_fail(err, errlen, "%s(): give the directory of its IDX files with dir: \"...\"", s->source);
        return -1;
    }
    const char *prefix = !strcmp(s->split, "train") ? "train" : "t10k";
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    IdxArray images, labels;
    if (idx_load(ipath, &images, err, errlen) != 0) return -1;
    if (images.ndim != 3 || images.dims[1] != IDX_SIDE || images.dims[2] != IDX_SIDE) {
        data_fail(err, errlen, "%s: expected images of %dx%d, got an array of rank %d (%lldx%lld)", ipath,
                  IDX_SIDE, IDX_SIDE, images.ndim, (long long)images.dims[1], (long long)images.dims[2]);
        idx_free(&images);
        return -1;
    }
    char lerr[512];
    int have_labels = idx_load(lpath, &labels, lerr, sizeof lerr) == 0;
    if (!have_labels && need_labels) {
        data_fail(err, errlen, "%s (the labels are needed)", lerr);
        idx_free(&images);
        return -1;
    }
    if (have_labels && (labels.ndim != 1 || labels.dims[0] != images.dims[0])) {
        data_fail(err, errlen, "%s: %lld labels for %lld images", lpath,
                  (long long)labels.dims[0], (long long)images.dims[0]);
        idx_free(&images);
        idx_free(&labels);
        return -1;
    }
    d->n = images.dims[0];
    d->ndim = 2;
    d->shape[0] = images.dims[1];
    d->shape[1] = images.dims[2];
    d->example_size = d->shape[0] * d->shape[1];
    d->x8 = images.data;        /* taken over from the IdxArray */
    images.data = NULL;
    if (have_labels) {
        d->labels = data_alloc((size_t)d->n * sizeof *d->labels + 1);
        for (int64_t i = 0; i < d->n; i++) {
            if (labels.data[i] >= s->nclasses) {
                data_fail(err, errlen, "%s: label %d of example %lld is not below the %lld classes",
                          lpath, labels.data[i], (long long)i, (long long)s->nclasses);
                idx_free(&images);
                idx_free(&labels);
                return -1;
            }
            d->labels[i] = labels.data[i];
        }
        idx_free(&labels);
    }
    d->nclasses = s->nclasses;
    idx_free(&images);
    return 0;
}

/* --- image folders --------------------------------------------------------------------- */

typedef struct Listing {
    char **files;              /* full paths, sorted within each class */
    int *label;                /* class of each file; -1 when the folder has no classes */
    int64_t n, cap;
    int nclasses;
} Listing;

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir: image files (want_dirs = 0) or subfolders (1); NULL with err if the
 * folder cannot be read. */
static char **list_dir(const char *dir, int want_dirs, int64_t *count, char *err, int errlen) {
    DIR *dp = opendir(dir);
    if (!dp) { data_fail(err, errlen, "cannot open folder %s: %s", dir, strerror(errno)); return NULL; }
    char **names = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        int is_dir = S_ISDIR(st.st_mode);
        if (want_dirs ? !is_dir : (is_dir || !has_image_ext(e->d_name))) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, (size_t)cap * sizeof *names);
            if (!names) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *count = n;
    return names ? names : data_alloc(1);
}

static void listing_add(Listing *l, const char *dir, const char *name, int label) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->files = realloc(l->files, (size_t)l->cap * sizeof *l->files);
        l->label = realloc(l->label, (size_t)l->cap * sizeof *l->label);
        if (!l->files || !l->label) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    }
    size_t len = strlen(dir) + strlen(name) + 2;
    l->files[l->n] = data_alloc(len);
    snprintf(l->files[l->n], len, "%s/%s", dir, name);
    l->label[l->n++] = label;
}

static void listing_free(Listing *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->files[i]);
    free(l->files);
    free(l->label);
}

static void free_names(char **names, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The images of a folder: its own image files; or, when it has none, those of each
 * subfolder, the subfolders (sorted by name) being the classes 0, 1, ... */
static int list_folder(const char *dir, Listing *l, char *err, int errlen) {
    memset(l, 0, sizeof *l);
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode)) {    /* one image file: a data set of one */
        size_t len = strlen(dir) + 1;
        l->files = malloc(sizeof *l->files);
        l->label = malloc(sizeof *l->label);
        l->files[0] = data_alloc(len);
        memcpy(l->files[0], dir, len);
        l->label[0] = -1;
        l->n = l->cap = 1;
        return 0;
    }
    int64_t n;
    char **names = list_dir(dir, 0, &n, err, errlen);
    if (!names) return -1;
    for (int64_t i = 0; i < n; i++) listing_add(l, dir, names[i], -1);
    free_names(names, n);
    if (l->n) return 0;
    int64_t nsub;
    char **subs = list_dir(dir, 1, &nsub, err, errlen);
    if (!subs) return -1;
    for (int64_t c = 0; c < nsub; c++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[c]);
        char **files = list_dir(sub, 0, &n, err, errlen);
        if (!files) { free_names(subs, nsub); listing_free(l); return -1; }
        for (int64_t i = 0; i < n; i++) listing_add(l, sub, files[i], (int)c);
        free_names(files, n);
    }
    l->nclasses = (int)nsub;
    free_names(subs, nsub);
    if (!l->n) {
        data_fail(err, errlen, "%s: empty folder: no PNG or JPEG files in it (nor in its subfolders)", dir);
        listing_free(l);
        return -1;
    }
    return 0;
}

int source_probe_folder(DataSpec *s, char *err, int errlen) {
    Listing l;
    if (list_folder(s->path, &l, err, errlen) != 0) return -1;
    int rc = 0;
    if (!s->size[0] || !s->channels) {
        int w, h, color;
        rc = image_read_info(l.files[0], &w, &h, &color, err, errlen);
        if (rc == 0) {
            if (!s->size[0]) { s->size[0] = h; s->size[1] = w; }
            if (!s->channels) s->channels = color ? 3 : 1;
        }
    }
    s->nclasses = l.nclasses;
    listing_free(&l);
    return rc;
}

/* Decoding is split over the thread pool (runtime/threads.h) in contiguous ranges; the
 * caller's range starts at 0 and reports progress. The error reported is the first file's
 * that failed, as a serial load would report it. */
typedef struct FolderJob {
    const DataSpec *s;
    const Listing *l;
    Dataset *d;
    Progress *pr;
    atomic_llong done;
    pthread_mutex_t lock;
    int64_t fail_at;           /* index of the first file that failed (l->n: none) */
    char err[1024];
} FolderJob;

static void decode_range(void *ctx, int64_t begin, int64_t end) {
    FolderJob *job = ctx;
    const DataSpec *s = job->s;
    Dataset *d = job->d;
    int64_t h = d->shape[0], w = d->shape[1], c = d->shape[2], pixels_cap = 0;
    float *pixels = NULL;
    char err[1024];
    for (int64_t i = begin; i < end; i++) {
        Image8 im;
        int rc = image_read(job->l->files[i], (int)c, &im, err, sizeof err);
        if (rc == 0 && !s->resize && (im.height != h || im.width != w)) {
            snprintf(err, sizeof err, "%s: inconsistent sizes in folder %s: %s is %dx%d, %s is %lldx%lld; "
                     "give image_folder(size: ...) to resize them all", s->path, s->path,
                     job->l->files[i], im.height, im.width, job->l->files[0], (long long)h, (long long)w);
            image_free(&im);
            rc = -1;
        }
        if (rc != 0) {
            pthread_mutex_lock(&job->lock);
            if (i < job->fail_at) { job->fail_at = i; memcpy(job->err, err, sizeof err); }
            pthread_mutex_unlock(&job->lock);
            break;
        }
        int64_t npx = (int64_t)im.height * im.width * c;
        uint8_t *dst = d->x8 + i * d->example_size;
        if (im.height == h && im.width == w) {
            memcpy(dst, im.pixels, (size_t)npx);
        } else {                  /* resized in float, rounded back to bytes as PIL does */
            if (npx + d->example_size > pixels_cap) {
                free(pixels);
                pixels_cap = npx + d->example_size;
                pixels = data_alloc((size_t)pixels_cap * sizeof *pixels);
            }
            float *out = pixels + npx;
            for (int64_t k = 0; k < npx; k++) pixels[k] = im.pixels[k];
            image_resize(pixels, im.height, im.width, (int)c, out, (int)h, (int)w);
            for (int64_t k = 0; k < d->example_size; k++) {
                float v = out[k] + 0.5f;
                dst[k] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
        }
        if (d->labels) d->labels[i] = (float)job->l->label[i];
        image_free(&im);
        long long done = atomic_fetch_add(&job->done, 1) + 1;
        if (begin == 0) progress_update(job->pr, done);
    }
    free(pixels);
}

static int load_folder(const DataSpec *s, Dataset *d, char *err, int errlen) {
    Listing l;
    if (list_folder(s->path, &l, err, errlen) != 0) return -1;
    int64_t h = s->size[0], w = s->size[1], c = s->channels;
    d->n = l.n;
    d->ndim = 3;
    d->shape[0] = h; d->shape[1] = w; d->shape[2] = c;
    d->example_size = h * w * c;
    d->x8 = data_alloc((size_t)(d->n * d->example_size) + 1);
    if (l.nclasses) d->labels = data_alloc((size_t)d->n * sizeof *d->labels + 1);
    d->nclasses = l.nclasses;
    char what[1200];
    snprintf(what, sizeof what, "image_folder(\"%s\")", s->path);
    Progress pr;
    progress_start(&pr, what, l.n);
    FolderJob job = { .s = s, .l = &l, .d = d, .pr = &pr, .fail_at = l.n };
    atomic_init(&job.done, 0);
    pthread_mutex_init(&job.lock, NULL);
    parallel_for(l.n, 16, decode_range, &job);
    pthread_mutex_destroy(&job.lock);
    int rc = job.fail_at < l.n ? -1 : 0;
    if (rc) {
        data_fail(err, errlen, "%s", job.err);
        if (pr.shown) printf("\n");
    } else {
        progress_end(&pr);
    }
    listing_free(&l);
    return rc;
}

/* --- .npy -------------------------------------------------------------------------------- */

static int load_npy(const DataSpec *s, Dataset *d, char *err, int errlen) {
    int ndim;
    int64_t dims[8];
    if (npy_read(s->path, &d->x, &ndim, dims, err, errlen) != 0) return -1;
    if (ndim < 1 || ndim > IR_MAXDIM) {
        data_fail(err, errlen, "%s: an array of rank %d; the first axis must count the examples", s->path, ndim);
        return -1;
    }
    d->n = dims[0];
    d->ndim = ndim - 1;
    d->example_size = 1;
    for (int k = 1; k < ndim; k++) { d->shape[k - 1] = dims[k]; d->example_size *= dims[k]; }
    if (d->n < 1) { data_fail(err, errlen, "%s: no examples (the first axis is 0)", s->path); return -1; }
    if (!s->labels_path) return 0;
    float *labels;
    int lndim;
    int64_t ldims[8];
    if (npy_read(s->labels_path, &labels, &lndim, ldims, err, errlen) != 0) return -1;
    int64_t count = lndim ? ldims[0] : 1;
    if (lndim < 1 || lndim > 2 || (lndim == 2 && ldims[1] != 1) || count != d->n) {
        data_fail(err, errlen, "%s: expected %lld labels, shaped (%lld,), for the examples of %s",
                  s->labels_path, (long long)d->n, (long long)d->n, s->path);
        free(labels);
        return -1;
    }
    int64_t maxl = 0;
    for (int64_t i = 0; i < count; i++) {
        if (labels[i] < 0 || labels[i] != (float)(int64_t)labels[i] || labels[i] > 1e7) {
            data_fail(err, errlen, "%s: label %g of example %lld is not a class id (a whole number, 0 or more)",
                      s->labels_path, labels[i], (long long)i);
            free(labels);
            return -1;
        }
        if (labels[i] > maxl) maxl = (int64_t)labels[i];
    }
    d->labels = labels;
    d->nclasses = maxl + 1;
    return 0;
}

/* --- text -------------------------------------------------------------------------------- */

/* The corpus as ids into its sorted set of bytes (the vocabulary). */
static int load_text(const DataSpec *s, Dataset *d, char *err, int errlen) {
    unsigned char *text;
    size_t n;
    if (read_file_all(s->path, &text, &n, err, errlen) != 0) return -1;
    if (n == 0) { data_fail(err, errlen, "%s: empty text file", s->path); free(text); return -1; }
    int present[256] = {0}, id[256];
    for (size_t i = 0; i < n; i++) present[text[i]] = 1;
    char *vocab = data_alloc(257);
    int nv = 0;
    for (int ch = 0; ch < 256; ch++)
        if (present[ch]) { id[ch] = nv; vocab[nv++] = (char)ch; }
    uint8_t *ids = data_alloc(n);
    for (size_t i = 0; i < n; i++) ids[i] = (uint8_t)id[text[i]];
    free(text);
    d->ids = ids;
    d->nids = (int64_t)n;
    d->nvocab = nv;
    d->vocab = vocab;
    return 0;
}

int source_load(const DataSpec *s, int need_labels, Dataset *raw, char *err, int errlen) {
    memset(raw, 0, sizeof *raw);
    raw->owned = 1;
    switch (s->kind) {
    case DS_IDX: return load_idx(s, need_labels, raw, err, errlen);
    case DS_FOLDER: return load_folder(s, raw, err, errlen);
    case DS_NPY: return load_npy(s, raw, err, errlen);
    case DS_TEXT: return load_text(s, raw, err, errlen);
    case DS_UNPAIRED: break;
    }
    data_fail(err, errlen, "%s(): not a source", s->source);
    return -1;
}
