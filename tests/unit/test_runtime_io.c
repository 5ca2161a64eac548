/* test_runtime_io.c: the runtime's I/O pieces: Philox RNG, IDX loading, PNG grids, .npy and
 * safetensors files, atomic writes. Everything it writes lives in a mkdtemp directory. */
#include "check.h"
#include "tmpfiles.h"
#include "fsutil.h"
#include "idx.h"
#include "image.h"
#include "npy.h"
#include "rng.h"
#include "safetensors.h"
#include <dirent.h>
#include <ftw.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char err[512];


static unsigned char *slurp(const char *path, size_t *n) {
    unsigned char *data;
    if (read_file_all(path, &data, n, err, sizeof err) != 0) { printf("# %s\n", err); return NULL; }
    return data;
}

static int mentions(const char *msg, const char *path, const char *what) {
    return strstr(msg, path) != NULL && (!what || strstr(msg, what) != NULL);
}

static int have_python_module(const char *module) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", module);
    return access("/usr/bin/python3", X_OK) == 0 && system(cmd) == 0;
}

/* Runs a Python script (saved into the temp directory, so no shell quoting) with arguments
 * and captures the last line it prints; returns its exit status. */
static int run_python(const char *script, const char *args, char *out, int outlen) {
    const char *file = tpath("check.py");
    write_bytes(file, script, strlen(script));
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 2>&1", file, args);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, (size_t)outlen, "%s", line);
    }
    return pclose(p);
}

/* ---------------------------------------------------------------------------------------- */

static void test_rng(void) {
    static const struct { uint32_t ctr[4], key[2], want[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        philox4x32_10(kat[k].ctr, kat[k].key, out);
        CHECK(memcmp(out, kat[k].want, sizeof out) == 0,
              "philox4x32_10 known-answer vector %d (got %08x %08x %08x %08x)",
              k + 1, out[0], out[1], out[2], out[3]);
    }

    Rng r;
    rng_init(&r, 0);
    float u[5];
    rng_uniform(&r, u, 5);
    CHECK(u[0] == (float)(0x6627e8d5u >> 8) * 0x1p-24f && u[3] == (float)(0x9b00dbd8u >> 8) * 0x1p-24f,
          "rng_uniform seed 0 draws the first Philox block (ctr 0, key 0)");
    CHECK(r.counter == 2, "rng_uniform of 5 consumes 2 counters");
    float z[3];
    rng_normal(&r, z, 3);
    CHECK(r.counter == 3, "rng_normal of 3 consumes 1 counter");

    int n = 1000000;
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    rng_init(&r, 42);
    rng_uniform(&r, a, n);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
        sum += a[i];
    }
    CHECK(lo >= 0 && hi < 1 && lo < 1e-4 && hi > 1 - 1e-4, "uniform values in [0, 1) (min %g, max %.9f)", lo, hi);
    CHECK(fabs(sum / n - 0.5) < 0.002, "uniform mean %.5f near 0.5", sum / n);

    Rng r2;
    rng_init(&r2, 42);
    rng_uniform(&r2, b, n);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "same seed gives the same uniform stream");
    rng_init(&r2, 43);
    rng_uniform(&r2, b, 1000);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += a[i] == b[i];
    CHECK(same < 5, "different seeds give different streams (%d of 1000 equal)", same);

    rng_init(&r, 7);
    rng_normal(&r, a, n);
    double mean = 0, var = 0;
    int finite = 1;
    for (int i = 0; i < n; i++) { mean += a[i]; finite &= isfinite(a[i]) != 0; }
    mean /= n;
    for (int i = 0; i < n; i++) var += (a[i] - mean) * (a[i] - mean);
    var /= n;
    CHECK(finite, "normals are all finite");
    CHECK(fabs(mean) < 0.01, "normal mean %.5f within 0.01 of 0", mean);
    CHECK(fabs(var - 1) < 0.02, "normal variance %.5f within 0.02 of 1", var);
    rng_init(&r2, 7);
    rng_normal(&r2, b, 7);
    CHECK(memcmp(a, b, sizeof(float) * 7) == 0, "rng_normal with odd n is a prefix of the same stream");

    rng_init(&r, 1);
    int counts[3] = {0}, in_range = 1;
    for (int i = 0; i < 30000; i++) {
        uint64_t v = rng_below(&r, 3);
        if (v >= 3) { in_range = 0; break; }
        counts[v]++;
    }
    CHECK(in_range, "rng_below(3) stays below 3");
    CHECK(abs(counts[0] - 10000) < 400 && abs(counts[1] - 10000) < 400 && abs(counts[2] - 10000) < 400,
          "rng_below(3) is uniform (%d %d %d)", counts[0], counts[1], counts[2]);
    CHECK(rng_below(&r, 1) == 0, "rng_below(1) is 0");
    uint64_t big = (UINT64_C(1) << 63) + 5, v = rng_below(&r, big);
    CHECK(v < big, "rng_below of a large bound stays in range");

    int64_t perm[100], perm2[100];
    for (int i = 0; i < 100; i++) perm[i] = perm2[i] = i;
    rng_init(&r, 5);
    rng_shuffle(&r, perm, 100);
    int seen[100] = {0}, valid = 1, moved = 0;
    for (int i = 0; i < 100; i++) {
        if (perm[i] < 0 || perm[i] >= 100 || seen[perm[i]]++) valid = 0;
        moved += perm[i] != i;
    }
    CHECK(valid && moved > 80, "rng_shuffle gives a permutation (%d of 100 moved)", moved);
    rng_init(&r, 5);
    rng_shuffle(&r, perm2, 100);
    CHECK(memcmp(perm, perm2, sizeof perm) == 0, "rng_shuffle is deterministic for a seed");
    free(a);
    free(b);
}

/* ---------------------------------------------------------------------------------------- */

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_fsutil(void) {
    struct stat st;
    CHECK(mkdir_p(tpath("fs/a/b/c/")) == 0 && stat(tpath("fs/a/b/c"), &st) == 0 && S_ISDIR(st.st_mode),
          "mkdir_p creates nested directories");
    CHECK(mkdir_p(tpath("fs/a/b/c")) == 0, "mkdir_p of an existing directory succeeds");
    CHECK(mkdir_parent(tpath("fs/x/y/file.bin")) == 0 && stat(tpath("fs/x/y"), &st) == 0
          && stat(tpath("fs/x/y/file.bin"), &st) != 0, "mkdir_parent creates the directory, not the file");

    const char *p = tpath("fs/new/out.txt");
    CHECK(write_file_atomic(p, "hello", 5, err, sizeof err) == 0, "write_file_atomic writes a new file");
    size_t n;
    unsigned char *data = slurp(p, &n);
    CHECK(data && n == 5 && memcmp(data, "hello", 5) == 0, "the written file holds its bytes");
    free(data);
    CHECK(write_file_atomic(p, "bye", 3, err, sizeof err) == 0, "write_file_atomic replaces a file");
    data = slurp(p, &n);
    CHECK(data && n == 3 && memcmp(data, "bye", 3) == 0, "the replaced file holds only the new bytes");
    free(data);
    CHECK(count_entries(tpath("fs/new")) == 1, "no temporary files are left behind");

    write_bytes(tpath("fs/plainfile"), "x", 1);
    const char *bad = tpath("fs/plainfile/sub/out.txt");
    CHECK(write_file_atomic(bad, "x", 1, err, sizeof err) != 0 && mentions(err, bad, NULL),
          "write_file_atomic under a plain file fails naming it: %s", err);
    CHECK(mkdir_p(tpath("fs/plainfile")) != 0, "mkdir_p over a plain file fails");
}

/* ---------------------------------------------------------------------------------------- */

static void test_idx_real(const char *path, int ndim, int64_t d0, int64_t d1, int64_t d2, int maxval) {
    if (access(path, R_OK) != 0) { printf("skip - %s not present\n", path); return; }
    IdxArray a;
    int rc = idx_load(path, &a, err, sizeof err);
    CHECK(rc == 0, "idx_load %s%s%s", path, rc ? ": " : "", rc ? err : "");
    if (rc) return;
    int64_t want[3] = {d0, d1, d2};
    int dims_ok = a.ndim == ndim;
    for (int d = 0; d < ndim && dims_ok; d++) dims_ok = a.dims[d] == want[d];
    CHECK(dims_ok, "%s has shape %lld x %lld x %lld (ndim %d)", path, (long long)a.dims[0],
          (long long)(ndim > 1 ? a.dims[1] : 0), (long long)(ndim > 2 ? a.dims[2] : 0), a.ndim);
    int64_t total = 1, mx = 0;
    for (int d = 0; d < a.ndim; d++) total *= a.dims[d];
    double sum = 0;
    for (int64_t i = 0; i < total; i++) { if (a.data[i] > mx) mx = a.data[i]; sum += a.data[i]; }
    CHECK(mx == maxval, "%s largest value is %d (got %lld)", path, maxval, (long long)mx);
    CHECK(sum > 0, "%s payload is not all zero", path);
    idx_free(&a);
    CHECK(a.data == NULL, "idx_free clears the array");
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    gzwrite(gz, data, (unsigned)n);
    gzclose(gz);
}

static void test_idx(void) {
    test_idx_real("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 3, 60000, 28, 28, 255);
    test_idx_real("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 1, 10000, 0, 0, 9);
    test_idx_real("/work/shared/data/mnist/t10k-images-idx3-ubyte.gz", 3, 10000, 28, 28, 255);

    unsigned char good[4 + 8 + 6] = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 250};
    const char *plain = tpath("good.idx"), *gz = tpath("good.idx.gz");
    write_bytes(plain, good, sizeof good);
    write_gz(gz, good, sizeof good);
    IdxArray a;
    CHECK(idx_load(plain, &a, err, sizeof err) == 0 && a.ndim == 2 && a.dims[0] == 2 && a.dims[1] == 3
          && a.data[0] == 1 && a.data[5] == 250, "idx_load reads an uncompressed IDX file");
    idx_free(&a);
    CHECK(idx_load(gz, &a, err, sizeof err) == 0 && a.ndim == 2 && a.dims[1] == 3 && a.data[5] == 250,
          "idx_load reads a gzip-compressed IDX file");
    idx_free(&a);

    const char *missing = tpath("missing.idx.gz");
    CHECK(idx_load(missing, &a, err, sizeof err) != 0 && mentions(err, missing, "No such file"),
          "missing IDX file: %s", err);
    CHECK(a.data == NULL, "a failed load leaves no data");

    const char *trunc = tpath("trunc.idx");
    write_bytes(trunc, good, sizeof good - 2);
    CHECK(idx_load(trunc, &a, err, sizeof err) != 0 && mentions(err, trunc, "truncated (expected 6 bytes of data, got 4)"),
          "truncated IDX file: %s", err);

    /* a gzip stream cut short */
    unsigned char big[4 + 4 + 5000];
    memcpy(big, "\0\0\x08\x01\0\0\x13\x88", 8);
    for (int i = 0; i < 5000; i++) big[8 + i] = (unsigned char)(i * 7919 % 251);
    const char *gzfull = tpath("big.idx.gz"), *gztrunc = tpath("trunc.idx.gz");
    write_gz(gzfull, big, sizeof big);
    size_t n;
    unsigned char *comp = slurp(gzfull, &n);
    write_bytes(gztrunc, comp, n / 2);
    free(comp);
    CHECK(idx_load(gzfull, &a, err, sizeof err) == 0 && a.dims[0] == 5000 && a.data[4999] == big[8 + 4999],
          "idx_load reads a larger gzip IDX file");
    idx_free(&a);
    CHECK(idx_load(gztrunc, &a, err, sizeof err) != 0 && mentions(err, gztrunc, NULL)
          && (strstr(err, "truncated") || strstr(err, "read error")),
          "truncated gzip IDX file: %s", err);

    const char *magic = tpath("magic.idx");
    write_bytes(magic, "P5\n28 28\n255\n", 13);
    CHECK(idx_load(magic, &a, err, sizeof err) != 0 && mentions(err, magic, "not an IDX file (bad magic)"),
          "bad IDX magic: %s", err);

    const char *type = tpath("float.idx");
    unsigned char f32[4 + 4 + 4] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0x80, 0x3f};
    write_bytes(type, f32, sizeof f32);
    CHECK(idx_load(type, &a, err, sizeof err) != 0 && mentions(err, type, "unsupported IDX element type 0x0D"),
          "unsupported IDX type: %s", err);

    const char *extra = tpath("extra.idx");
    unsigned char longer[sizeof good + 1];
    memcpy(longer, good, sizeof good);
    longer[sizeof good] = 9;
    write_bytes(extra, longer, sizeof longer);
    CHECK(idx_load(extra, &a, err, sizeof err) != 0 && mentions(err, extra, "unexpected bytes"),
          "IDX file longer than its dimensions: %s", err);
}

/* ---------------------------------------------------------------------------------------- */

/* Reads a PNG back with libpng's simplified API in its own format (grey or RGB). */
static unsigned char *read_png(const char *path, int *w, int *h, int *channels) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    *channels = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    img.format = *channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) { free(buf); return NULL; }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static void test_png(void) {
    /* five 2x3 grey tiles with values 0, .25, .5, .75, 1 in a grid of 2 rows -> 3 columns */
    float imgs[5 * 6];
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 6; k++) imgs[i * 6 + k] = i * 0.25f;
    imgs[4 * 6 + 5] = 7.0f;         /* clamps to 255 */
    imgs[0] = -3.0f;                /* clamps to 0 */
    const char *p = tpath("png/deeper/grid.png");
    int rc = png_write_grid(p, imgs, 5, 1, 2, 3, 2, 0, 0.0f, 1.0f, err, sizeof err);
    CHECK(rc == 0, "png_write_grid grey into a new directory%s%s", rc ? ": " : "", rc ? err : "");
    int w = 0, h = 0, c = 0;
    unsigned char *px = read_png(p, &w, &h, &c);
    CHECK(px && w == 3 * 3 + 2 && h == 2 * 2 + 1 && c == 1, "grey grid is 11 x 5, 1 channel (got %d x %d, %d)", w, h, c);
    if (px) {
        CHECK(px[0] == 0 && px[1] == 0, "tile 0 is black");
        CHECK(px[3] == 0 && px[7] == 0, "1-pixel gaps between columns are 0");
        CHECK(px[4] == 64 && px[2 * w + 8] == 0, "tile 1 maps 0.25 to 64; gap row is 0");
        CHECK(px[3 * w + 0] == 191 && px[3 * w + 4] == 255 && px[4 * w + 6] == 255,
              "row 2: tile 3 is 191, tile 4 is 255 (and clamps)");
        CHECK(px[3 * w + 8] == 0 && px[4 * w + 10] == 0, "the unused sixth cell stays 0");
        CHECK(px[2 * w + 1] == 0, "the gap row between grid rows is 0");
    }
    free(px);

    /* two 3-channel 2x2 images, columns only: red and blue */
    float rgb[2 * 3 * 4] = {0};
    for (int k = 0; k < 4; k++) { rgb[0 * 4 + k] = 1.0f; rgb[12 + 2 * 4 + k] = 1.0f; }
    p = tpath("png/rgb.png");
    rc = png_write_grid(p, rgb, 2, 3, 2, 2, 0, 2, 0.0f, 1.0f, err, sizeof err);
    CHECK(rc == 0, "png_write_grid RGB%s%s", rc ? ": " : "", rc ? err : "");
    px = read_png(p, &w, &h, &c);
    CHECK(px && w == 5 && h == 2 && c == 3, "RGB grid is 5 x 2, 3 channels (got %d x %d, %d)", w, h, c);
    if (px) {
        CHECK(px[0] == 255 && px[1] == 0 && px[2] == 0, "first image is red");
        CHECK(px[6] == 0 && px[7] == 0 && px[8] == 0, "gap column is black");
        CHECK(px[(w + 4) * 3] == 0 && px[(w + 4) * 3 + 2] == 255, "second image is blue");
    }
    free(px);
    CHECK(png_write_grid(tpath("png/sq.png"), imgs, 5, 1, 2, 3, 0, 0, 0, 1, err, sizeof err) == 0
          && (px = read_png(tpath("png/sq.png"), &w, &h, &c)) && w == 11 && h == 5,
          "without rows or cols the grid is about square (3 x 2)");
    free(px);
    CHECK(count_entries(tpath("png")) == 3, "PNG writes leave no temporary files");

    write_bytes(tpath("pngfile"), "x", 1);
    const char *bad = tpath("pngfile/grid.png");
    CHECK(png_write_grid(bad, imgs, 5, 1, 2, 3, 2, 0, 0, 1, err, sizeof err) != 0 && mentions(err, bad, NULL),
          "png_write_grid to an impossible path names it: %s", err);
    CHECK(png_write_grid(tpath("png/c2.png"), imgs, 5, 2, 2, 3, 2, 0, 0, 1, err, sizeof err) != 0
          && mentions(err, tpath("png/c2.png"), "channels"), "png_write_grid rejects 2 channels: %s", err);
}

/* ---------------------------------------------------------------------------------------- */

static void write_npy_raw(const char *path, const char *dict, const void *data, size_t n) {
    char head[256];
    int len = (int)strlen(dict);
    int total = (10 + len + 1 + 63) / 64 * 64;
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char)(total - 10);
    head[9] = 0;
    memcpy(head + 10, dict, (size_t)len);
    memset(head + 10 + len, ' ', (size_t)(total - 11 - len));
    head[total - 1] = '\n';
    FILE *f = fopen(path, "wb");
    fwrite(head, 1, (size_t)total, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_npy(void) {
    float m[12];
    for (int i = 0; i < 12; i++) m[i] = (float)i * 0.5f - 2.0f;
    int64_t dims2[2] = {3, 4}, dims1[1] = {5};
    const char *p2 = tpath("npy/sub/m.npy"), *p1 = tpath("npy/v.npy");
    CHECK(npy_write(p2, m, 2, dims2, err, sizeof err) == 0, "npy_write 3 x 4 into a new directory");
    CHECK(npy_write(p1, m, 1, dims1, err, sizeof err) == 0, "npy_write 1-D");

    size_t n;
    unsigned char *raw = slurp(p2, &n);
    int hl = raw ? raw[8] | raw[9] << 8 : 0;
    CHECK(raw && memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hl) % 64 == 0 && raw[9 + hl] == '\n'
          && n == (size_t)(10 + hl) + sizeof m, "npy header is v1.0, padded to 64 bytes, ends in newline");
    CHECK(raw && memmem(raw, n, "'shape': (3, 4)", 15), "2-D shape is written as (3, 4)");
    free(raw);
    raw = slurp(p1, &n);
    CHECK(raw && memmem(raw, n, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 57),
          "1-D header reads {'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
    free(raw);

    float *back;
    int nd;
    int64_t d[8];
    CHECK(npy_read(p2, &back, &nd, d, err, sizeof err) == 0 && nd == 2 && d[0] == 3 && d[1] == 4
          && memcmp(back, m, sizeof m) == 0, "npy round trip 3 x 4");
    free(back);
    CHECK(npy_read(p1, &back, &nd, d, err, sizeof err) == 0 && nd == 1 && d[0] == 5
          && memcmp(back, m, 5 * sizeof(float)) == 0, "npy round trip 1-D");
    free(back);

    double f8[3] = {1.5, -2.25, 1e10};
    const char *pf8 = tpath("npy/f8.npy");
    write_npy_raw(pf8, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8, sizeof f8);
    CHECK(npy_read(pf8, &back, &nd, d, err, sizeof err) == 0 && nd == 1 && back[0] == 1.5f
          && back[1] == -2.25f && back[2] == 1e10f, "npy_read converts <f8");
    free(back);
    unsigned char u1[6] = {0, 1, 2, 3, 200, 255};
    const char *pu1 = tpath("npy/u1.npy");
    write_npy_raw(pu1, "{\"shape\": (2, 3), \"descr\": \"|u1\", \"fortran_order\": False}", u1, sizeof u1);
    CHECK(npy_read(pu1, &back, &nd, d, err, sizeof err) == 0 && nd == 2 && d[1] == 3 && back[4] == 200.0f
          && back[5] == 255.0f, "npy_read converts |u1 with keys in another order");
    free(back);
    int64_t i8[2] = {-7, 1 << 20};
    const char *pi8 = tpath("npy/i8.npy");
    write_npy_raw(pi8, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", i8, sizeof i8);
    CHECK(npy_read(pi8, &back, &nd, d, err, sizeof err) == 0 && back[0] == -7.0f && back[1] == 1048576.0f,
          "npy_read converts <i8");
    free(back);
    int32_t i4[1] = {-123};
    const char *pi4 = tpath("npy/i4.npy");
    write_npy_raw(pi4, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", i4, sizeof i4);
    CHECK(npy_read(pi4, &back, &nd, d, err, sizeof err) == 0 && nd == 0 && back[0] == -123.0f,
          "npy_read converts a 0-d <i4");
    free(back);

    const char *pf = tpath("npy/fortran.npy");
    write_npy_raw(pf, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", m, 16);
    CHECK(npy_read(pf, &back, &nd, d, err, sizeof err) != 0 && mentions(err, pf, "Fortran"),
          "Fortran-order .npy is refused: %s", err);
    const char *pbe = tpath("npy/be.npy");
    write_npy_raw(pbe, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", m, 8);
    CHECK(npy_read(pbe, &back, &nd, d, err, sizeof err) != 0 && mentions(err, pbe, ">f4"),
          "big-endian .npy is refused: %s", err);
    const char *pt = tpath("npy/trunc.npy");
    write_npy_raw(pt, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", m, 40);
    CHECK(npy_read(pt, &back, &nd, d, err, sizeof err) != 0 && mentions(err, pt, "truncated"),
          "truncated .npy: %s", err);
    const char *pm = tpath("npy/magic.npy");
    static const char zip[] = "PK\x03\x04 not numpy at all";
    write_bytes(pm, zip, sizeof zip - 1);
    CHECK(npy_read(pm, &back, &nd, d, err, sizeof err) != 0 && mentions(err, pm, "bad magic"),
          "bad .npy magic: %s", err);
    const char *ph = tpath("npy/header.npy");
    write_npy_raw(ph, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4}", m, sizeof m);
    CHECK(npy_read(ph, &back, &nd, d, err, sizeof err) != 0 && mentions(err, ph, "header"),
          "malformed .npy header: %s", err);
    const char *pn = tpath("npy/none.npy");
    CHECK(npy_read(pn, &back, &nd, d, err, sizeof err) != 0 && mentions(err, pn, "No such file"),
          "missing .npy: %s", err);

    if (!have_python_module("numpy")) {
        printf("skip - numpy cross-check: /usr/bin/python3 has no numpy\n");
        return;
    }
    char out[512], args[600];
    snprintf(args, sizeof args, "%s %s", p2, p1);
    int rc = run_python(
        "import numpy as np, sys\n"
        "a, b = np.load(sys.argv[1]), np.load(sys.argv[2])\n"
        "want = [[i * 0.5 - 2 for i in range(4 * r, 4 * r + 4)] for r in range(3)]\n"
        "print(a.dtype, a.shape, a.tolist() == want, b.shape, b.tolist() == [-2, -1.5, -1, -0.5, 0])\n",
        args, out, sizeof out);
    CHECK(rc == 0 && strcmp(out, "float32 (3, 4) True (5,) True") == 0,
          "numpy reads the files npy_write wrote (%s)", out);
    const char *pnp = tpath("npy/from_numpy.npy");
    rc = run_python("import numpy as np, sys\n"
                    "np.save(sys.argv[1], np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 8)\n",
                    pnp, out, sizeof out);
    int ok = rc == 0 && npy_read(pnp, &back, &nd, d, err, sizeof err) == 0 && nd == 3 && d[0] == 2
             && d[1] == 3 && d[2] == 4;
    for (int i = 0; ok && i < 24; i++) ok = back[i] == i / 8.0f;
    CHECK(ok, "npy_read reads a float64 file numpy wrote%s%s", rc ? ": " : "", rc ? out : "");
    if (rc == 0) free(back);
}

/* ---------------------------------------------------------------------------------------- */

static void write_st_raw(const char *path, const char *header, const void *data, size_t n) {
    uint64_t len = strlen(header);
    unsigned char l8[8];
    for (int b = 0; b < 8; b++) l8[b] = (unsigned char)(len >> (8 * b));
    FILE *f = fopen(path, "wb");
    fwrite(l8, 1, 8, f);
    fwrite(header, 1, (size_t)len, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void expect_st_error(const char *name, const char *header, const void *data, size_t n,
                            const char *what) {
    const char *p = tpath(name);
    write_st_raw(p, header, data, n);
    StFile *f = st_open(p, err, sizeof err);
    CHECK(!f && mentions(err, p, what), "%s is refused: %s", name, err);
    st_close(f);
}

static void test_safetensors(void) {
    float w[6] = {1, 2, 3, 4, 5, 6}, b[4] = {-1, 0.5f, 1e-20f, 3e30f}, s[1] = {42};
    StTensor ts[3] = {
        {"enc.w", 2, {2, 3}, w},
        {"enc.b", 1, {4}, b},
        {"step \"scalar\"", 0, {0}, s},
    };
    StMeta meta[2] = {{"format", "gmc"}, {"note", "quotes \" back\\slash\nnewline caf\xc3\xa9"}};
    const char *p = tpath("st/ckpt/model.safetensors");
    int rc = st_write(p, ts, 3, meta, 2, err, sizeof err);
    CHECK(rc == 0, "st_write 3 tensors and 2 metadata entries%s%s", rc ? ": " : "", rc ? err : "");
    size_t n;
    unsigned char *raw = slurp(p, &n);
    uint64_t hlen = 0;
    for (int i = 0; raw && i < 8; i++) hlen |= (uint64_t)raw[i] << (8 * i);
    CHECK(raw && hlen % 8 == 0 && n == 8 + hlen + sizeof w + sizeof b + sizeof s && raw[8] == '{',
          "file is 8 + header (padded to 8) + data bytes");
    free(raw);

    StFile *f = st_open(p, err, sizeof err);
    CHECK(f != NULL, "st_open reads it back%s%s", f ? "" : ": ", f ? "" : err);
    if (f) {
        CHECK(st_count(f) == 3, "three tensors");
        const StTensor *t = st_find(f, "enc.w");
        CHECK(t && t->ndim == 2 && t->dims[0] == 2 && t->dims[1] == 3 && memcmp(t->data, w, sizeof w) == 0,
              "enc.w round trips");
        t = st_find(f, "enc.b");
        CHECK(t && t->ndim == 1 && t->dims[0] == 4 && memcmp(t->data, b, sizeof b) == 0, "enc.b round trips");
        t = st_find(f, "step \"scalar\"");
        CHECK(t && t->ndim == 0 && t->data[0] == 42.0f, "a 0-d tensor with quotes in its name round trips");
        CHECK(st_find(f, "enc") == NULL, "st_find of an absent name is NULL");
        CHECK(st_get(f, 0) && strcmp(st_get(f, 0)->name, "enc.w") == 0 && st_get(f, 3) == NULL,
              "st_get keeps file order and bounds");
        CHECK(((uintptr_t)st_get(f, 1)->data & 3) == 0, "tensor data is float-aligned");
        CHECK(st_meta(f, "format") && strcmp(st_meta(f, "format"), "gmc") == 0, "metadata 'format' round trips");
        CHECK(st_meta(f, "note") && strcmp(st_meta(f, "note"), meta[1].value) == 0,
              "metadata with escapes and UTF-8 round trips");
        CHECK(st_meta(f, "absent") == NULL, "st_meta of an absent key is NULL");
        st_close(f);
    }

    /* an empty checkpoint */
    const char *pe = tpath("st/empty.safetensors");
    CHECK(st_write(pe, NULL, 0, NULL, 0, err, sizeof err) == 0 && (f = st_open(pe, err, sizeof err))
          && st_count(f) == 0, "an empty safetensors file round trips");
    st_close(f);

    /* a header length that is not a multiple of 4 leaves the data misaligned */
    float two[2] = {1.25f, -8};
    const char *pa = tpath("st/misaligned.safetensors");
    write_st_raw(pa, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", two, sizeof two);
    f = st_open(pa, err, sizeof err);
    CHECK(f && st_find(f, "x") && ((uintptr_t)st_find(f, "x")->data & 3) == 0
          && st_find(f, "x")->data[0] == 1.25f && st_find(f, "x")->data[1] == -8,
          "misaligned tensor data is read through an aligned copy");
    st_close(f);
    const char *pu = tpath("st/unicode.safetensors");
    write_st_raw(pu, " {\"\\u00e9\\ud83d\\ude00\\/\" : {\"shape\" : [ 2 ] , \"data_offsets\":[0, 8],"
                 "\"dtype\":\"F32\"}, \"__metadata__\":{}}  ", two, sizeof two);
    f = st_open(pu, err, sizeof err);
    CHECK(f == NULL, "a header not starting with '{' is refused");
    st_close(f);
    write_st_raw(pu, "{\"\\u00e9\\ud83d\\ude00\\/\" : {\"shape\" : [ 2 ] , \"data_offsets\":[0, 8],"
                 "\"dtype\":\"F32\"}, \"__metadata__\":{}}  ", two, sizeof two);
    f = st_open(pu, err, sizeof err);
    CHECK(f && st_find(f, "\xc3\xa9\xf0\x9f\x98\x80/"), "\\u escapes and surrogate pairs decode to UTF-8%s%s",
          f ? "" : ": ", f ? "" : err);
    st_close(f);

    /* damaged files */
    raw = slurp(p, &n);
    const char *pt = tpath("st/trunc.safetensors");
    write_bytes(pt, raw, n - 4);
    f = st_open(pt, err, sizeof err);
    CHECK(!f && mentions(err, pt, "data_offsets out of range"), "truncated data: %s", err);
    write_bytes(pt, raw, 4);
    f = st_open(pt, err, sizeof err);
    CHECK(!f && mentions(err, pt, "not a safetensors file"), "4-byte file: %s", err);
    write_bytes(pt, raw, 40);
    f = st_open(pt, err, sizeof err);
    char want[128];
    snprintf(want, sizeof want, "header length %llu exceeds file size 40", (unsigned long long)hlen);
    CHECK(!f && mentions(err, pt, want), "header cut short: %s", err);
    free(raw);
    const char *pg = tpath("st/garbage.safetensors");
    char garbage[1000];
    for (int i = 0; i < 1000; i++) garbage[i] = (char)('a' + i % 26);
    write_bytes(pg, garbage, sizeof garbage);
    f = st_open(pg, err, sizeof err);
    CHECK(!f && mentions(err, pg, "exceeds file size 1000"), "garbage file: %s", err);
    const char *pn = tpath("st/none.safetensors");
    f = st_open(pn, err, sizeof err);
    CHECK(!f && mentions(err, pn, "No such file"), "missing file: %s", err);

    float eight[8] = {0};
    expect_st_error("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[12,28]}}", eight, 32, "overlaps");
    expect_st_error("dtype", "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
                    eight, 8, "unsupported dtype F16");
    expect_st_error("shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
                    eight, 16, "do not match");
    expect_st_error("range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
                    eight, 16, "tensor 'a': data_offsets out of range");
    expect_st_error("brace", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}",
                    eight, 16, "malformed header JSON");
    expect_st_error("escape", "{\"a\\q\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                    eight, 16, "bad escape");
    expect_st_error("float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4.0],\"data_offsets\":[0,16]}}",
                    eight, 16, "integer");
    expect_st_error("negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}",
                    eight, 16, "non-negative integer");
    expect_st_error("meta", "{\"__metadata__\":{\"k\":3}}", eight, 0, "not a string");
    expect_st_error("dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", eight, 8, "duplicate");
    expect_st_error("missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", eight, 4, "lacks");
    expect_st_error("trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
                    eight, 4, "after the header");

    StTensor dup[2] = {{"a", 1, {1}, w}, {"a", 1, {1}, w}};
    const char *pd = tpath("st/dup.safetensors");
    CHECK(st_write(pd, dup, 2, NULL, 0, err, sizeof err) != 0 && mentions(err, pd, "duplicate"),
          "st_write refuses duplicate names: %s", err);
    CHECK(access(pd, F_OK) != 0, "a refused write leaves no file");
    CHECK(count_entries(tpath("st/ckpt")) == 1, "st_write leaves no temporary files");

    char out[512];
    if (have_python_module("safetensors") && have_python_module("numpy")) {
        int rc2 = run_python(
            "import sys\n"
            "from safetensors import safe_open\n"
            "from safetensors.numpy import load_file\n"
            "t = load_file(sys.argv[1])\n"
            "m = safe_open(sys.argv[1], 'np').metadata()\n"
            "print(sorted(t), t['enc.w'].shape, t['enc.b'].tolist()[:2], m['format'])\n",
            p, out, sizeof out);
        CHECK(rc2 == 0 && strcmp(out, "['enc.b', 'enc.w', 'step \"scalar\"'] (2, 3) [-1.0, 0.5] gmc") == 0,
              "python safetensors reads st_write's file (%s)", out);
    } else {
        printf("skip - python safetensors cross-check: module not installed\n");
    }
    if (access("/usr/bin/python3", X_OK) == 0) {
        int rc2 = run_python(
            "import sys, json, struct\n"
            "d = open(sys.argv[1], 'rb').read()\n"
            "n = struct.unpack('<Q', d[:8])[0]\n"
            "h = json.loads(d[8:8 + n])\n"
            "note = h['__metadata__']['note'] == 'quotes \" back\\\\slash\\nnewline caf\\u00e9'\n"
            "print(sorted(k for k in h if k != '__metadata__'), h['enc.w']['data_offsets'], note, len(d) - 8 - n)\n",
            p, out, sizeof out);
        CHECK(rc2 == 0 && strcmp(out, "['enc.b', 'enc.w', 'step \"scalar\"'] [0, 24] True 44") == 0,
              "python's json module parses st_write's header (%s)", out);
    } else {
        printf("skip - json cross-check of safetensors: no /usr/bin/python3\n");
    }
}

/* ---------------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gmc_test_runtime_io_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    test_rng();
    test_fsutil();
    test_idx();
    test_png();
    test_npy();
    test_safetensors();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_DONE();
}
