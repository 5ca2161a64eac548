/* plot.c: loss curves as a PNG: one coloured line per series over the steps, a light grid,
 * and the y-axis range and step count written with a 3x5 pixel font, so a run's progress can
 * be seen without any other tool. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image.h"
#include "plot.h"

enum { W = 640, H = 360, LEFT = 56, RIGHT = 12, TOP = 12, BOTTOM = 24 };

/* digits, '.', '-', 'e', '+', 'k' as 3x5 bitmaps (rows top to bottom, 3 bits each) */
static const char glyph_chars[] = "0123456789.-e+k";
static const unsigned short glyphs[][5] = {
    { 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 7, 1, 7 }, { 5, 5, 7, 1, 1 },
    { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 1, 1 }, { 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
    { 0, 0, 0, 0, 2 }, { 0, 0, 7, 0, 0 }, { 0, 7, 5, 6, 7 }, { 0, 2, 7, 2, 0 }, { 4, 5, 6, 5, 5 },
};

static const float palette[][3] = {
    { 0.12f, 0.47f, 0.71f }, { 1.0f, 0.50f, 0.05f }, { 0.17f, 0.63f, 0.17f },
    { 0.84f, 0.15f, 0.16f }, { 0.58f, 0.40f, 0.74f }, { 0.55f, 0.34f, 0.29f },
};

typedef struct Canvas { float *px; } Canvas;     /* planar RGB, [3][H][W], values in [0, 1] */

static void put(Canvas *c, int x, int y, const float *rgb) {
    if (x < 0 || x >= W || y < 0 || y >= H) return;
    for (int k = 0; k < 3; k++) c->px[(k * H + y) * W + x] = rgb[k];
}

static void line(Canvas *c, int x0, int y0, int x1, int y1, const float *rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        put(c, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) return;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

static void text(Canvas *c, int x, int y, const char *s, const float *rgb) {
    for (; *s; s++, x += 4) {
        const char *g = strchr(glyph_chars, *s);
        if (!g || !*s) continue;
        const unsigned short *rows = glyphs[g - glyph_chars];
        for (int r = 0; r < 5; r++)
            for (int b = 0; b < 3; b++)
                if (rows[r] >> (2 - b) & 1) put(c, x + b, y + r, rgb);
    }
}

int plot_losses(const char *path, const PlotSeries *series, int nseries, int64_t npoints,
                char *err, int errlen) {
    Canvas c = { malloc(3 * W * H * sizeof(float)) };
    if (!c.px) return -1;
    for (int i = 0; i < 3 * W * H; i++) c.px[i] = 1;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (int64_t i = 0; i < npoints; i++)
            if (isfinite(series[s].y[i])) { lo = fmin(lo, series[s].y[i]); hi = fmax(hi, series[s].y[i]); }
    if (!(lo <= hi)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
    const float grid[3] = { 0.88f, 0.88f, 0.88f }, ink[3] = { 0.2f, 0.2f, 0.2f };
    int pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    for (int k = 0; k <= 4; k++) {
        int y = TOP + ph * k / 4;
        line(&c, LEFT, y, W - RIGHT, y, grid);
        char label[32];
        snprintf(label, sizeof label, "%.4g", hi - (hi - lo) * k / 4);
        text(&c, 2, y - 2, label, ink);
    }
    line(&c, LEFT, TOP, LEFT, TOP + ph, ink);
    line(&c, LEFT, TOP + ph, W - RIGHT, TOP + ph, ink);
    char label[32];
    snprintf(label, sizeof label, "%lld", (long long)npoints);
    text(&c, W - RIGHT - 4 * (int)strlen(label), H - BOTTOM + 6, label, ink);
    text(&c, LEFT, H - BOTTOM + 6, "0", ink);
    for (int s = 0; s < nseries; s++) {
        const float *rgb = palette[s % 6];
        int px = -1, py = -1;
        for (int64_t i = 0; i < npoints; i++) {
            if (!isfinite(series[s].y[i])) { px = -1; continue; }
            int x = LEFT + (int)((double)pw * i / (npoints > 1 ? npoints - 1 : 1));
            int y = TOP + (int)(ph * (hi - series[s].y[i]) / (hi - lo));
            if (px >= 0) line(&c, px, py, x, y, rgb);
            else put(&c, x, y, rgb);
            px = x;
            py = y;
        }
        /* a legend mark: a short line in the series' colour at the top right, one per series */
        line(&c, W - RIGHT - 20, TOP + 4 + 6 * s, W - RIGHT - 8, TOP + 4 + 6 * s, rgb);
    }
    int rc = png_write_grid(path, c.px, 1, 3, H, W, 1, 1, 0, 1, err, errlen);
    free(c.px);
    return rc;
}
