/* geomask's masked filters in C: the loops of geomask/_nb (numba) line for line.
 *
 * Compiled once per pixel type by geomask/_c/build.py:
 *   cc -O3 -ffp-contract=off -shared -fPIC -DGM_T=uint16_t -DGM_U=uint16_t kernels.c
 * GM_T is the pixel type (source block and output), GM_U the unsigned type of the same size
 * (the output's bits, compared to count changes).
 *
 * Why by hand (and why C as well as numba): no library computes a filter only at selected pixels
 * with a fixed per-pixel summation order (see geomask/_nb/__init__.py, whose docstring describes
 * the data layout and the orders, which are scipy.ndimage's). numba compiles these loops on a
 * machine's first run (15-20 s of CPU); a C compiler builds this file in well under a second per
 * pixel type. Every float operation is written in the same order as in geomask/_nb and scipy, and
 * -ffp-contract=off keeps the compiler from fusing a multiply and an add (one rounding less), so
 * the results are the same bit for bit. No -ffast-math: it would reorder sums.
 *
 * Layout: arrays are C-contiguous in their last axis; strides are passed in elements. Booleans are
 * numpy's (one byte, 0 or 1). Functions return the number of values that changed bit-wise, or a
 * negative error code (GM_ERR_*), never abort.
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef GM_T
#define GM_T double
#define GM_U uint64_t
#endif

typedef GM_T T;
typedef GM_U U;

#define GM_ERR_RING (-1)  /* the in-place ring is full: a bug */
#define GM_ERR_NOMEM (-2) /* malloc failed */

#define EPS 2.220446049250313e-16 /* DBL_EPSILON, as numpy's finfo(float64).eps */
#define GAP 8                      /* rows._GAP */
#define DENSE_MIN 8                /* rows._DENSE_MIN */
#define MARGIN 16                  /* separable._MARGIN */
#define RUNS 8                     /* separable._RUNS */

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* Everything a kernel call shares (numba: the block, valid and cast tuples, _nb.refs._borrowed). */
typedef struct {
    const T *src;     /* (bands, in_h, in_w) */
    int64_t src_sb;   /* band stride (elements) */
    int64_t src_sr;   /* row stride */
    const int64_t *prow; /* (h, pk) */
    int64_t h, pk;
    const int64_t *pcol; /* (w, pkw) */
    int64_t w, pkw;
    const uint8_t *tgt;  /* (h, tgt_w), tgt_w a multiple of 8; viewed as uint64 words */
    int64_t tgt_w;
    T *out;           /* (nb, rows, w) */
    int64_t nb, out_sb, out_sr;
    int64_t c0;
    /* the in-place ring (_nb.ring) */
    int64_t in_place;
    const int64_t *last; /* (h,) */
    int64_t *held, *nseg, *whole; /* (nslots,) */
    int64_t *segs;    /* (nslots, nsegmax, 3) */
    int64_t nslots, nsegmax;
    int64_t *count;   /* (1,) */
    /* validity */
    double cval, nd;
    int64_t has_nd;
    const uint8_t *sup; /* (in_h, sup_w) */
    int64_t sup_w, has_sup;
    /* the cast */
    int64_t is_int;
    double lo, hi;
} gm_block;

#define SRC(B, b, p, q) ((double)(B)->src[(b) * (B)->src_sb + (p) * (B)->src_sr + (q)])
#define OUTP(B, b, i) ((B)->out + (b) * (B)->out_sb + (i) * (B)->out_sr)
#define SUP(B, p, q) ((B)->sup[(p) * (B)->sup_w + (q)])
#define PROW(B, i, k) ((B)->prow[(i) * (B)->pk + (k)])
#define PCOL(B, x, j) ((B)->pcol[(x) * (B)->pkw + (j)])
#define TW(B, i, wd) (load64((B)->tgt + (i) * (B)->tgt_w + 8 * (wd)))
#define TGT(B, i, x) ((B)->tgt[(i) * (B)->tgt_w + (x)])

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int bad_value(double v, double nd, int64_t has_nd) { return v != v || (has_nd && v == nd); }

/* (value, valid) of one cell; p or q < 0: a constant cell (cells._cell). */
static inline double cell(const gm_block *B, int64_t b, int64_t p, int64_t q, int cval_valid, int *ok) {
    if (p < 0 || q < 0) {
        *ok = cval_valid;
        return B->cval;
    }
    double v = SRC(B, b, p, q);
    *ok = !(v != v || (B->has_nd && v == B->nd) || (B->has_sup && !SUP(B, p, q)));
    return v;
}

/* cells.symmetry: 1 symmetric, -1 antisymmetric, 0 otherwise. */
static int symmetry(const double *w, int64_t n) {
    int64_t c = n / 2, ll;
    for (ll = 1; ll <= c; ll++)
        if (fabs(w[c + ll] - w[c - ll]) > EPS) break;
    if (ll > c) return 1;
    for (ll = 1; ll <= c; ll++)
        if (fabs(w[c + ll] + w[c - ll]) > EPS) return 0;
    return -1;
}

/* cells.tap1d: correlate w with line[start : start + n] in scipy's correlate1d order. */
static inline double tap1d(const double *line, int64_t start, const double *w, int64_t n, int sym) {
    int64_t c = n / 2, ctr = start + c;
    double t;
    if (sym > 0) {
        t = line[ctr] * w[c];
        for (int64_t jj = -c; jj < 0; jj++) t += (line[ctr + jj] + line[ctr - jj]) * w[c + jj];
        return t;
    }
    if (sym < 0) {
        t = line[ctr] * w[c];
        for (int64_t jj = -c; jj < 0; jj++) t += (line[ctr + jj] - line[ctr - jj]) * w[c + jj];
        return t;
    }
    t = line[start + n - 1] * w[n - 1];
    for (int64_t k = 0; k < n - 1; k++) t += line[start + k] * w[k];
    return t;
}

/* The cast to the output type: integers round half to even (rint) and clip. */
static inline T cast_value(double t, int64_t is_int, double lo, double hi) {
    if (is_int) {
        double r = rint(t);
        if (r < lo)
            r = lo;
        else if (r > hi)
            r = hi;
        if (r != r) r = 0.0; /* not reached (integer blocks give finite sums); avoids UB */
        return (T)r;
    }
    return (T)t;
}

/* stores._store: store res at out[b, i, x]; 1 if its bits changed. */
static inline int64_t store(const gm_block *B, int64_t b, int64_t i, int64_t x, double res) {
    T *o = OUTP(B, b, i) + x;
    U old, now;
    memcpy(&old, o, sizeof(U));
    *o = cast_value(res, B->is_int, B->lo, B->hi);
    memcpy(&now, o, sizeof(U));
    return now != old;
}

/* cells._touch: load each target's own column in each source row of its footprint (independent
 * loads, so the cache misses of scattered targets overlap); the sum goes to a volatile sink. */
static _Thread_local volatile double touch_sink; /* per thread: no shared cache line */
static void touch(const gm_block *B, int64_t b, const int64_t *pr, int64_t kh, const int64_t *xs, int64_t n,
                  int64_t rx) {
    double acc = 0.0;
    for (int64_t k = 0; k < kh; k++) {
        int64_t p = pr[k];
        if (p < 0) continue;
        for (int64_t m = 0; m < n; m++) acc += SRC(B, b, p, PCOL(B, xs[m], rx));
    }
    touch_sink = acc;
}

/* ---- rows ---------------------------------------------------------------------------------- */

/* rows._row_targets: columns of the targets of row i within whole words x0..x1 into xs. */
static int64_t row_targets(const gm_block *B, int64_t i, int64_t x0, int64_t x1, int64_t *xs) {
    int64_t n = 0;
    for (int64_t wd = x0 / 8; wd < (x1 + 7) / 8; wd++) {
        if (TW(B, i, wd) == 0) continue;
        int64_t base = wd * 8, e = imin(base + 8, x1);
        for (int64_t x = base; x < e; x++)
            if (TGT(B, i, x)) xs[n++] = x;
    }
    return n;
}

/* rows._row_segments: split the targets of row i into segments (count, start, stop). */
static int64_t row_segments(const gm_block *B, int64_t i, int64_t x0, int64_t x1, int64_t *segs, uint8_t *nz) {
    int64_t nw = B->tgt_w / 8;
    for (int64_t wd = 0; wd < nw; wd++) nz[wd] = TW(B, i, wd) != 0;
    int64_t g = 0, n = 0, first = -1, last = -1;
    int64_t wd = x0 / 8, end = (x1 + 7) / 8;
    while (wd < end) {
        if ((wd & 7) == 0 && load64(nz + wd) == 0) { /* 64 empty columns at a time */
            wd += 8;
            continue;
        }
        if (nz[wd] == 0) {
            wd += 1;
            continue;
        }
        uint64_t v = TW(B, i, wd);
        wd += 1;
        if (first >= 0 && wd - 1 - last > GAP) {
            segs[3 * g] = n;
            segs[3 * g + 1] = first * 8;
            segs[3 * g + 2] = imin(x1, (last + 1) * 8);
            g++;
            n = 0;
            first = wd - 1;
        } else if (first < 0) {
            first = wd - 1;
        }
        last = wd - 1;
        n += (int64_t)((v * 0x0101010101010101ULL) >> 56);
    }
    if (first >= 0) {
        segs[3 * g] = n;
        segs[3 * g + 1] = first * 8;
        segs[3 * g + 2] = imin(x1, (last + 1) * 8);
        g++;
    }
    if (g > 1) {
        int64_t covered = 0, total = 0;
        for (int64_t k = 0; k < g; k++) {
            covered += segs[3 * k + 2] - segs[3 * k + 1];
            total += segs[3 * k];
        }
        if (4 * covered >= segs[3 * (g - 1) + 2] - segs[1]) {
            segs[0] = total;
            segs[2] = segs[3 * (g - 1) + 2];
            g = 1;
        }
    }
    return g;
}

/* rows._fill: rows start..stop-1 of out[b] <- the block's own pixels; returns stop. */
static int64_t fill(const gm_block *B, int64_t b, int64_t ry, int64_t rx, int64_t start, int64_t stop) {
    int64_t w = B->w;
    for (int64_t i = start; i < stop; i++) {
        int64_t p = PROW(B, i, ry);
        T *o = OUTP(B, b, i);
        const T *s = B->src + b * B->src_sb + p * B->src_sr;
        if (B->c0 >= 0) {
            memcpy(o, s + B->c0, (size_t)w * sizeof(T));
        } else {
            for (int64_t x = 0; x < w; x++) o[x] = s[PCOL(B, x, rx)];
        }
    }
    return stop;
}

/* ---- the in-place ring ----------------------------------------------------------------------- */

/* ring._copy_held */
static void copy_held(const T *a, T *z, const int64_t *segs, int64_t nseg, int64_t whole) {
    if (whole) {
        int64_t s0 = segs[1], s1 = segs[3 * (nseg - 1) + 2];
        memmove(z + s0, a + s0, (size_t)(s1 - s0) * sizeof(T));
        return;
    }
    for (int64_t g = 0; g < nseg; g++) {
        int64_t s0 = segs[3 * g + 1], s1 = segs[3 * g + 2];
        memmove(z + s0, a + s0, (size_t)(s1 - s0) * sizeof(T));
    }
}

/* ring._ring_flush: write back the held rows whose last reader is done (before < 0: all). The
 * ring rows live in band 0 of out; src band 0 receives them. */
static void ring_flush_impl(const gm_block *B, int64_t ry, int64_t before) {
    T *src = (T *)B->src;
    for (int64_t s = 0; s < B->nslots; s++) {
        int64_t j = B->held[s];
        if (j < 0) continue;
        if (before >= 0 && (B->last[j] < 0 || B->last[j] >= before)) continue;
        const T *a = OUTP(B, 0, s);
        T *z = src + PROW(B, j, ry) * B->src_sr + B->c0;
        copy_held(a, z, B->segs + s * B->nsegmax * 3, B->nseg[s], B->whole[s]);
        B->held[s] = -1;
        B->count[0] -= 1;
    }
}

/* ring._ring_take: a free slot for output row i holding its own pixels over its segments. */
static int64_t ring_take(const gm_block *B, int64_t ry, int64_t i, const int64_t *segs, int64_t nseg) {
    for (int64_t s = 0; s < B->nslots; s++) {
        if (B->held[s] >= 0) continue;
        B->held[s] = i;
        B->nseg[s] = nseg;
        int64_t *kept = B->segs + s * B->nsegmax * 3;
        int64_t covered = 0;
        for (int64_t g = 0; g < nseg; g++) {
            kept[3 * g] = segs[3 * g];
            kept[3 * g + 1] = segs[3 * g + 1];
            kept[3 * g + 2] = segs[3 * g + 2];
            covered += segs[3 * g + 2] - segs[3 * g + 1];
        }
        B->whole[s] = segs[3 * (nseg - 1) + 2] - segs[1] <= covered + 128 * nseg;
        B->count[0] += 1;
        const T *a = B->src + PROW(B, i, ry) * B->src_sr + B->c0;
        copy_held(a, OUTP(B, 0, s), kept, nseg, B->whole[s]);
        return s;
    }
    return GM_ERR_RING;
}

/* rows._begin_row: start output row i. Returns nseg (or an error < 0); *filled and *oi updated. */
static int64_t begin_row(const gm_block *B, int64_t b, int64_t ry, int64_t rx, int64_t i, int64_t *filled,
                         int64_t *segs, uint8_t *nzw, int64_t *oi) {
    if (!B->in_place) *filled = fill(B, b, ry, rx, *filled, imin(B->h, i + ry + 1));
    uint64_t any = 0;
    int64_t nw = B->tgt_w / 8;
    for (int64_t wd = 0; wd < nw; wd++) any |= TW(B, i, wd);
    *oi = i;
    if (any == 0) return 0;
    if (B->in_place && B->count[0] > 0) ring_flush_impl(B, ry, i);
    int64_t nseg = row_segments(B, i, 0, B->w, segs, nzw);
    if (B->in_place) {
        int64_t s = ring_take(B, ry, i, segs, nseg);
        if (s < 0) return s;
        *oi = s;
    }
    return nseg;
}

/* rows._gather_line: row p of band b at columns pline[0:n] (as float64) into line; invalid: lbad.
 * Walks the runs of consecutive columns (the whole line away from the scene's edges; at an edge all
 * but the few reflected columns), each converted in one straight loop: the same values as numba's
 * cell-by-cell gather where the line is not one straight run, without its cost on long rows that
 * touch an edge. */
static void gather_line(const gm_block *B, int64_t b, int64_t p, const int64_t *pline, int64_t n,
                        double *restrict line, uint8_t *restrict lbad, int cval_valid, int check) {
    if (p < 0) {
        for (int64_t c = 0; c < n; c++) {
            line[c] = B->cval;
            lbad[c] = !cval_valid;
        }
        return;
    }
    const T *restrict row = B->src + b * B->src_sb + p * B->src_sr;
    const uint8_t *srow_sup = B->has_sup ? B->sup + p * B->sup_w : NULL;
    const double nd = B->nd;
    const int has_nd = (int)B->has_nd;
    int64_t c = 0;
    while (c < n) {
        int64_t q = pline[c];
        if (q < 0) {
            line[c] = B->cval;
            lbad[c] = !cval_valid;
            c++;
            continue;
        }
        int64_t e = c + 1;
        while (e < n && pline[e] == pline[e - 1] + 1) e++;
        const T *restrict s = row + q;
        double *restrict l = line + c;
        uint8_t *restrict lb = lbad + c;
        int64_t m = e - c;
        for (int64_t k = 0; k < m; k++) l[k] = (double)s[k];
        if (!check) {
            memset(lb, 0, (size_t)m);
        } else if (srow_sup) {
            const uint8_t *restrict su = srow_sup + q;
            for (int64_t k = 0; k < m; k++) lb[k] = (has_nd && l[k] == nd) || !su[k];
        } else {
            for (int64_t k = 0; k < m; k++) lb[k] = has_nd && l[k] == nd;
        }
        c = e;
    }
}

/* ---- stores -------------------------------------------------------------------------------- */

/* stores._store_stretch over columns x0..x1 of row oi: straight passes; -1 (nothing stored) when a
 * target's result or own value is NaN. nrow: scratch of w values. */
static int64_t store_span(const gm_block *B, int64_t b, int64_t i, int64_t oi, const double *res, T *nrow,
                          int64_t x0, int64_t x1) {
    const uint8_t *tg = B->tgt + i * B->tgt_w + x0;
    const double *rs = res + x0;
    T *o = OUTP(B, b, oi) + x0;
    int64_t n = x1 - x0;
    if (!B->is_int) {
        int bad = 0;
        for (int64_t x = 0; x < n; x++) {
            double t = rs[x], c = (double)o[x];
            bad |= tg[x] & ((t != t) | (c != c));
        }
        if (bad) return -1;
    }
    if (B->is_int) {
        double lo = B->lo, hi = B->hi;
        for (int64_t x = 0; x < n; x++) {
            double t = rint(rs[x]);
            t = t > lo ? t : lo; /* max(rint(t), lo), then min(., hi): numba's order */
            t = t < hi ? t : hi;
            nrow[x] = (T)t;
        }
    } else {
        for (int64_t x = 0; x < n; x++) nrow[x] = (T)rs[x];
    }
    int64_t changed = 0;
    U *ob = (U *)o;
    const U *nb_ = (const U *)nrow;
    for (int64_t x = 0; x < n; x++) {
        U now = nb_[x], old = ob[x];
        int64_t sel = tg[x];
        changed += sel & (now != old);
        ob[x] = sel ? now : old;
    }
    return changed;
}

typedef double (*careful_fn)(const gm_block *B, int64_t b, const int64_t *pr, int64_t x, const void *ctx,
                             int *ok);

/* stores._finish_dense: store a dense segment's sums; targets left for the careful path go to xs
 * (their number in *left). */
static int64_t finish_dense(const gm_block *B, int64_t b, int64_t i, int64_t oi, int64_t n, int64_t x0, int64_t x1,
                            const double *res, const uint8_t *bad, int check, T *nrow, int64_t *xs, int64_t *left) {
    *left = 0;
    if (!check && 8 * n >= x1 - x0) {
        int64_t ch = store_span(B, b, i, oi, res, nrow, x0, x1);
        if (ch >= 0) return ch;
    }
    int cval_valid = !bad_value(B->cval, B->nd, B->has_nd);
    int64_t p = PROW(B, i, B->pk / 2), rx = B->pkw / 2;
    n = row_targets(B, i, x0, x1, xs);
    int64_t changed = 0, l = 0;
    for (int64_t m = 0; m < n; m++) {
        int64_t x = xs[m];
        int ok;
        cell(B, b, p, PCOL(B, x, rx), cval_valid, &ok);
        if (!ok) continue;
        double t = res[x];
        if (t != t || (check && bad[x])) {
            xs[l++] = x;
            continue;
        }
        changed += store(B, b, oi, x, t);
    }
    *left = l;
    return changed;
}

/* ---- sums of taps -------------------------------------------------------------------------------- */

/* out[x] (x < n) from taps over shifted lines, each pixel's terms in the order of the tap-outer
 * loops of geomask/_nb (so the same bits): mode 3: 0.0, then += a[t][x] * w[t] for every t (2-D
 * correlation); otherwise a[0][x] * w[0], then for t >= 1 += a[t][x] * w[t] (mode 0),
 * (a[t][x] + z[t][x]) * w[t] (mode 1, symmetric) or (a[t][x] - z[t][x]) * w[t] (mode 2).
 *
 * Why not tap-outer as in numba: that reads and writes out[] once per tap (memory-bound); here
 * BLK pixels are summed in registers over all taps and stored once. Only the speed changes. */
#define BLK 16
#define SUM_TAPS_BODY(M)                                                                               \
    do {                                                                                               \
        int64_t t0 = 1;                                                                                \
        if (mode == 3) {                                                                               \
            for (int64_t i = 0; i < (M); i++) acc[i] = 0.0;                                            \
            t0 = 0;                                                                                    \
        } else {                                                                                       \
            const double *restrict a0 = a[0] + x;                                                      \
            for (int64_t i = 0; i < (M); i++) acc[i] = a0[i] * w[0];                                   \
        }                                                                                              \
        for (int64_t t = t0; t < ntap; t++) {                                                          \
            const double *restrict at = a[t] + x;                                                      \
            const double wt = w[t];                                                                    \
            if (mode == 1) {                                                                           \
                const double *restrict zt = z[t] + x;                                                  \
                for (int64_t i = 0; i < (M); i++) acc[i] += (at[i] + zt[i]) * wt;                      \
            } else if (mode == 2) {                                                                    \
                const double *restrict zt = z[t] + x;                                                  \
                for (int64_t i = 0; i < (M); i++) acc[i] += (at[i] - zt[i]) * wt;                      \
            } else {                                                                                   \
                for (int64_t i = 0; i < (M); i++) acc[i] += at[i] * wt;                                \
            }                                                                                          \
        }                                                                                              \
        for (int64_t i = 0; i < (M); i++) out[x + i] = acc[i];                                         \
    } while (0)

static void sum_taps(double *restrict out, int64_t n, int64_t ntap, const double *const *a, const double *const *z,
                     const double *w, int mode) {
    int64_t x = 0;
    double acc[BLK];
    for (; x + BLK <= n; x += BLK) SUM_TAPS_BODY(BLK);
    if (x < n) {
        int64_t m = n - x;
        SUM_TAPS_BODY(m);
    }
}

/* The (a, z, w, mode) of sum_taps for tap1d over lines at base[offset + x]: weights ``wts`` (n),
 * symmetry ``sym``; ``stride`` between the lines of consecutive taps (1: one line, shifted; else
 * ``rows[k]`` are the lines). Returns the number of taps. */
static int64_t tap1d_taps(const double *const *rows, const double *wts, int64_t n, int sym, const double **a,
                          const double **z, double *w, int *mode) {
    int64_t c = n / 2;
    if (sym != 0) {
        a[0] = rows[c];
        w[0] = wts[c];
        for (int64_t t = 1; t <= c; t++) {
            int64_t jj = -c + (t - 1);
            a[t] = rows[c + jj];
            z[t] = rows[c - jj];
            w[t] = wts[c + jj];
        }
        *mode = sym > 0 ? 1 : 2;
        return c + 1;
    }
    a[0] = rows[n - 1];
    w[0] = wts[n - 1];
    for (int64_t t = 1; t < n; t++) {
        a[t] = rows[t - 1];
        w[t] = wts[t - 1];
    }
    *mode = 0;
    return n;
}

/* ---- 2-D correlation (linear2d) -------------------------------------------------------------- */

typedef struct {
    const int64_t *di, *dj;
    const double *ww;
    int64_t nz;
    int cval_valid;
    int64_t normalize;
    double full;
} careful2d_ctx;

/* linear2d._careful2d: one pixel with invalid cells among its taps: num * (full / den). */
static double careful2d(const gm_block *B, int64_t b, const int64_t *pr, int64_t x, const careful2d_ctx *c,
                        int *ok_out) {
    int64_t ry = B->pk / 2, rx = B->pkw / 2;
    int ok;
    cell(B, b, pr[ry], PCOL(B, x, rx), c->cval_valid, &ok);
    if (!ok) {
        *ok_out = 0;
        return 0.0;
    }
    double t = 0.0, den = 0.0;
    for (int64_t k = 0; k < c->nz; k++) {
        double v = cell(B, b, pr[c->di[k]], PCOL(B, x, c->dj[k]), c->cval_valid, &ok);
        if (ok) {
            t += v * c->ww[k];
            den += c->ww[k];
        }
    }
    if (c->normalize) {
        if (den == 0) {
            *ok_out = 0;
            return 0.0;
        }
        t = t * (c->full / den);
    }
    *ok_out = 1;
    return t;
}

int64_t gm_linear2d(const gm_block *B, const double *weights, int64_t kh, int64_t kw, const int64_t *pline,
                    int64_t pw, int64_t normalize) {
    int64_t h = B->h, w = B->w, nb = B->nb;
    int64_t nz = 0;
    for (int64_t k = 0; k < kh * kw; k++)
        if (fabs(weights[k]) > EPS) nz++;
    int64_t pwm = pw > 1 ? pw : 1;
    size_t W = (size_t)w;
    int64_t *di = malloc(sizeof(int64_t) * (size_t)(nz + 1));
    int64_t *dj = malloc(sizeof(int64_t) * (size_t)(nz + 1));
    double *ww = malloc(sizeof(double) * (size_t)(nz + 1));
    int64_t *xs = malloc(sizeof(int64_t) * W + 8);
    int64_t *xsp = malloc(sizeof(int64_t) * W + 8);
    int64_t *segs = malloc(sizeof(int64_t) * 3 * (W / 8 + 1));
    size_t nzw_n = (size_t)((B->tgt_w / 8 + 7) / 8 * 8) + 8;
    uint8_t *nzw = calloc(nzw_n, 1);
    double *lines = malloc(sizeof(double) * (size_t)(kh * pwm));
    uint8_t *lbad = calloc((size_t)(kh * pwm), 1);
    double *res = malloc(sizeof(double) * W + 8);
    uint8_t *bad = calloc(W + 8, 1);
    T *nrow = malloc(sizeof(T) * W + 8);
    const double **taps = malloc(sizeof(double *) * (size_t)(nz + 1));
    int64_t changed = 0;
    if (!di || !dj || !ww || !xs || !xsp || !segs || !nzw || !lines || !lbad || !res || !bad || !nrow || !taps) {
        changed = GM_ERR_NOMEM;
        goto done;
    }
    double full = 0.0;
    int64_t n = 0;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++)
            if (fabs(weights[i * kw + j]) > EPS) {
                di[n] = i;
                dj[n] = j;
                ww[n] = weights[i * kw + j];
                full += weights[i * kw + j];
                n++;
            }
    for (int64_t k = 0; k < nz; k++) taps[k] = lines + di[k] * pwm + dj[k]; /* sum_taps' lines */
    int cval_valid = !bad_value(B->cval, B->nd, B->has_nd);
    int check = B->has_nd || B->has_sup || !cval_valid;
    careful2d_ctx cc = {di, dj, ww, nz, cval_valid, normalize, full};
    int dense_ok = pw == w + kw - 1;
    int64_t ry = kh / 2, rx = kw / 2;
    for (int64_t b = 0; b < nb; b++) {
        int64_t filled = 0;
        for (int64_t i = 0; i < h; i++) {
            int64_t oi;
            int64_t nseg = begin_row(B, b, ry, rx, i, &filled, segs, nzw, &oi);
            if (nseg < 0) {
                changed = nseg;
                goto done;
            }
            if (nseg == 0) continue;
            const int64_t *pr = B->prow + i * B->pk;
            int64_t nsp = 0;
            for (int64_t g = 0; g < nseg; g++) {
                int64_t sn = segs[3 * g], x0 = segs[3 * g + 1], x1 = segs[3 * g + 2];
                int64_t span = x1 - x0;
                if (dense_ok && sn >= DENSE_MIN && 4 * sn * (nz + 32 * kh) >= span * nz) {
                    for (int64_t a = 0; a < kh; a++)
                        gather_line(B, b, pr[a], pline + x0, span + kw - 1, lines + a * pwm, lbad + a * pwm,
                                    cval_valid, check);
                    sum_taps(res + x0, span, nz, taps, NULL, ww, 3);
                    if (check) {
                        uint8_t *bs = bad + x0;
                        for (int64_t x = 0; x < span; x++) bs[x] = 0;
                        for (int64_t k = 0; k < nz; k++) {
                            const uint8_t *ba = lbad + di[k] * pwm + dj[k];
                            for (int64_t x = 0; x < span; x++) bs[x] |= ba[x];
                        }
                    }
                    int64_t left;
                    changed += finish_dense(B, b, i, oi, sn, x0, x1, res, bad, check, nrow, xs, &left);
                    for (int64_t m = 0; m < left; m++) {
                        int64_t x = xs[m];
                        int ok;
                        double t = careful2d(B, b, pr, x, &cc, &ok);
                        if (ok) changed += store(B, b, oi, x, t);
                    }
                    continue;
                }
                nsp += row_targets(B, i, x0, x1, xsp + nsp);
            }
            touch(B, b, pr, B->pk, xsp, nsp, rx);
            for (int64_t m = 0; m < nsp; m++) {
                int64_t x = xsp[m];
                int ok;
                cell(B, b, pr[ry], PCOL(B, x, rx), cval_valid, &ok);
                if (!ok) continue;
                double t = 0.0;
                int bd = 0;
                const int64_t *pc = B->pcol + x * B->pkw;
                for (int64_t k = 0; k < nz; k++) {
                    int64_t p = pr[di[k]], q = pc[dj[k]];
                    double v;
                    if (p < 0 || q < 0) {
                        v = B->cval;
                        bd |= !cval_valid;
                    } else {
                        v = SRC(B, b, p, q);
                        if (check) bd |= (B->has_nd && v == B->nd) || (B->has_sup && !SUP(B, p, q));
                    }
                    t += v * ww[k];
                }
                if (t != t || bd) {
                    t = careful2d(B, b, pr, x, &cc, &ok);
                    if (!ok) continue;
                }
                changed += store(B, b, oi, x, t);
            }
        }
    }
    if (B->in_place) ring_flush_impl(B, ry, h);
done:
    free(di);
    free(dj);
    free(ww);
    free(xs);
    free(xsp);
    free(segs);
    free(nzw);
    free(lines);
    free(lbad);
    free(res);
    free(bad);
    free(nrow);
    free(taps);
    return changed;
}

/* ---- separable kernels ------------------------------------------------------------------------- */

typedef struct {
    const double *column, *row;
    int64_t kh, kw;
    int sym_c, sym_r;
    double full_row;
    int cval_valid, check;
    int64_t normalize;
    const int64_t *pline;
    int64_t nslot, w;
    double *hnum;     /* (nslot, w) */
    uint8_t *hbad;    /* (nslot, w) */
    int64_t *stamp;   /* (nslot, w) */
    int64_t *lo_s, *hi_s; /* (nslot, RUNS) */
    int64_t *nrun;
    double *pline_buf;
    uint8_t *lbad;
    double *line, *dline, *cnum, *cden, *cfull; /* careful scratch */
    const double **ra, **rz, **ca, **cz, **rows_; /* sum_taps' lines: row pass (fixed), column pass */
    double *rw, *cw;
    int64_t rn, cn;
    int rmode, cmode;
} sep_ctx;

/* passes._slot_pass: row pass of source row p for output columns x0..x1 into slot s. */
static void slot_pass(const gm_block *B, const sep_ctx *S, int64_t b, int64_t p, int64_t x0, int64_t x1, int64_t s) {
    int64_t kw = S->kw, span = x1 - x0;
    double *hn = S->hnum + s * S->w;
    uint8_t *hb = S->hbad + s * S->w;
    if (p < 0) {
        for (int64_t x = x0; x < x1; x++) {
            hn[x] = B->cval;
            hb[x] = !S->cval_valid;
        }
        return;
    }
    gather_line(B, b, p, S->pline + x0, span + kw - 1, S->pline_buf, S->lbad, S->cval_valid, S->check);
    sum_taps(hn + x0, span, S->rn, S->ra, S->rz, S->rw, S->rmode);
    uint8_t *hbs = hb + x0;
    memset(hbs, 0, (size_t)span);
    if (S->check)
        for (int64_t j = 0; j < kw; j++) {
            const uint8_t *lb = S->lbad + j;
            for (int64_t x = 0; x < span; x++) hbs[x] |= lb[x];
        }
}

/* passes._uncached_pass: slot_pass over the columns x0..x1 none of slot s's runs holds. */
static void uncached_pass(const gm_block *B, const sep_ctx *S, int64_t b, int64_t p, int64_t x0, int64_t x1,
                          int64_t s, int64_t gen) {
    int64_t x = x0;
    const int64_t *lo = S->lo_s + s * RUNS, *hi = S->hi_s + s * RUNS;
    while (x < x1) {
        int64_t e = x1;
        int inside = 0;
        for (int64_t r = 0; r < S->nrun[s]; r++) {
            if (lo[r] <= x && x < hi[r]) {
                x = hi[r];
                inside = 1;
                break;
            }
            if (x < lo[r] && lo[r] < e) e = lo[r];
        }
        if (inside) continue;
        slot_pass(B, S, b, p, x, e, s);
        int64_t *st = S->stamp + s * S->w;
        for (int64_t q = x; q < e; q++) st[q] = gen;
        x = e;
    }
}

/* passes._column_pass: res[x] = tap1d over hnum[slot[k], x] with column, for x in x0..x1. */
static void column_pass(const sep_ctx *S, const int64_t *slot, double *res, int64_t x0, int64_t x1) {
    int mode;
    for (int64_t k = 0; k < S->kh; k++) S->rows_[k] = S->hnum + slot[k] * S->w + x0;
    int64_t n = tap1d_taps(S->rows_, S->column, S->kh, S->sym_c, S->ca, S->cz, S->cw, &mode);
    sum_taps(res + x0, x1 - x0, n, S->ca, S->cz, S->cw, mode);
}

/* separable._careful_sep: one pixel with invalid cells in its footprint, renormalised. */
static double careful_sep(const gm_block *B, const sep_ctx *S, int64_t b, const int64_t *pr, int64_t x, int *ok_out) {
    int64_t kh = S->kh, kw = S->kw;
    const int64_t *pc = B->pcol + x * B->pkw;
    int ok;
    cell(B, b, pr[kh / 2], pc[kw / 2], S->cval_valid, &ok);
    if (!ok) {
        *ok_out = 0;
        return 0.0;
    }
    for (int64_t k = 0; k < kh; k++) {
        int64_t p = pr[k];
        if (p < 0) {
            S->cnum[k] = S->cval_valid ? B->cval : 0.0;
            S->cden[k] = S->cval_valid ? 1.0 : 0.0;
            S->cfull[k] = 1.0;
            continue;
        }
        for (int64_t j = 0; j < kw; j++) {
            double v = cell(B, b, p, pc[j], S->cval_valid, &ok);
            S->line[j] = ok ? v : 0.0;
            S->dline[j] = ok ? 1.0 : 0.0;
        }
        S->cnum[k] = tap1d(S->line, 0, S->row, kw, S->sym_r);
        S->cden[k] = tap1d(S->dline, 0, S->row, kw, S->sym_r);
        S->cfull[k] = S->full_row;
    }
    double t = tap1d(S->cnum, 0, S->column, kh, S->sym_c);
    if (S->normalize) {
        double den = tap1d(S->cden, 0, S->column, kh, S->sym_c);
        if (den == 0) {
            *ok_out = 0;
            return 0.0;
        }
        t = t * (tap1d(S->cfull, 0, S->column, kh, S->sym_c) / den);
    }
    *ok_out = 1;
    return t;
}

int64_t gm_separable(const gm_block *B, const double *column, int64_t kh, const double *row, int64_t kw,
                     const int64_t *pline, int64_t pw, int64_t normalize) {
    int64_t h = B->h, w = B->w, nb = B->nb, nslot = kh + 1;
    size_t W = (size_t)w + 1, NS = (size_t)nslot;
    int64_t pwm = pw > 1 ? pw : 1;
    sep_ctx S;
    memset(&S, 0, sizeof S);
    S.column = column;
    S.row = row;
    S.kh = kh;
    S.kw = kw;
    S.sym_r = symmetry(row, kw);
    S.sym_c = symmetry(column, kh);
    double *ones = malloc(sizeof(double) * (size_t)kw);
    int64_t *tags = malloc(sizeof(int64_t) * NS), *gens = calloc(NS, sizeof(int64_t));
    S.lo_s = calloc(NS * RUNS, sizeof(int64_t));
    S.hi_s = calloc(NS * RUNS, sizeof(int64_t));
    S.nrun = calloc(NS, sizeof(int64_t));
    int64_t *runs_next = calloc(NS, sizeof(int64_t));
    S.stamp = calloc(NS * W, sizeof(int64_t));
    S.hnum = malloc(sizeof(double) * NS * W);
    S.hbad = calloc(NS * W, 1);
    uint8_t *used = calloc(NS, 1);
    int64_t *slot = malloc(sizeof(int64_t) * (size_t)kh);
    int64_t *xs = malloc(sizeof(int64_t) * W), *xsp = malloc(sizeof(int64_t) * W);
    int64_t *segs = malloc(sizeof(int64_t) * 3 * ((size_t)w / 8 + 1));
    size_t nzw_n = (size_t)((B->tgt_w / 8 + 7) / 8 * 8) + 8;
    uint8_t *nzw = calloc(nzw_n, 1);
    S.pline_buf = malloc(sizeof(double) * (size_t)pwm);
    S.lbad = calloc((size_t)pwm, 1);
    S.line = malloc(sizeof(double) * (size_t)kw);
    S.dline = malloc(sizeof(double) * (size_t)kw);
    S.cnum = malloc(sizeof(double) * (size_t)kh);
    S.cden = malloc(sizeof(double) * (size_t)kh);
    S.cfull = malloc(sizeof(double) * (size_t)kh);
    size_t kmax = (size_t)(kh > kw ? kh : kw) + 1;
    S.ra = malloc(sizeof(double *) * kmax);
    S.rz = malloc(sizeof(double *) * kmax);
    S.ca = malloc(sizeof(double *) * kmax);
    S.cz = malloc(sizeof(double *) * kmax);
    S.rows_ = malloc(sizeof(double *) * kmax);
    S.rw = malloc(sizeof(double) * kmax);
    S.cw = malloc(sizeof(double) * kmax);
    double *res = malloc(sizeof(double) * W);
    uint8_t *bad = calloc(W, 1);
    T *nrow = malloc(sizeof(T) * W);
    int64_t changed = 0;
    if (!ones || !tags || !gens || !S.lo_s || !S.hi_s || !S.nrun || !runs_next || !S.stamp || !S.hnum || !S.hbad ||
        !used || !slot || !xs || !xsp || !segs || !nzw || !S.pline_buf || !S.lbad || !S.line || !S.dline ||
        !S.cnum || !S.cden || !S.cfull || !res || !bad || !nrow || !S.ra || !S.rz || !S.ca || !S.cz || !S.rows_ ||
        !S.rw || !S.cw) {
        changed = GM_ERR_NOMEM;
        goto done;
    }
    for (int64_t j = 0; j < kw; j++) ones[j] = 1.0;
    S.full_row = tap1d(ones, 0, row, kw, S.sym_r);
    for (int64_t j = 0; j < kw; j++) S.rows_[j] = S.pline_buf + j; /* the row pass: one line, shifted */
    S.rn = tap1d_taps(S.rows_, row, kw, S.sym_r, S.ra, S.rz, S.rw, &S.rmode);
    S.cval_valid = !bad_value(B->cval, B->nd, B->has_nd);
    S.check = B->has_nd || B->has_sup || !S.cval_valid;
    S.normalize = normalize;
    S.pline = pline;
    S.nslot = nslot;
    S.w = (int64_t)W;
    int dense_ok = pw == w + kw - 1;
    int64_t ry = kh / 2, rx = kw / 2, gen = 0;
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t s = 0; s < nslot; s++) tags[s] = -9;
        int64_t filled = 0;
        for (int64_t i = 0; i < h; i++) {
            int64_t oi;
            int64_t nseg = begin_row(B, b, ry, rx, i, &filled, segs, nzw, &oi);
            if (nseg < 0) {
                changed = nseg;
                goto done;
            }
            if (nseg == 0) continue;
            const int64_t *pr = B->prow + i * B->pk;
            memset(used, 0, NS);
            for (int64_t k = 0; k < kh; k++) {
                slot[k] = -1;
                for (int64_t s = 0; s < nslot; s++)
                    if (tags[s] == pr[k]) {
                        slot[k] = s;
                        used[s] = 1;
                        break;
                    }
            }
            for (int64_t k = 0; k < kh; k++) {
                if (slot[k] >= 0) continue;
                for (int64_t k2 = 0; k2 < k; k2++)
                    if (pr[k2] == pr[k]) {
                        slot[k] = slot[k2];
                        break;
                    }
                if (slot[k] >= 0) continue;
                for (int64_t s = 0; s < nslot; s++)
                    if (!used[s]) {
                        used[s] = 1;
                        tags[s] = pr[k];
                        gen += 1;
                        gens[s] = gen;
                        S.nrun[s] = 0;
                        runs_next[s] = 0;
                        slot[k] = s;
                        break;
                    }
            }
            int64_t nsp = 0;
            for (int64_t g = 0; g < nseg; g++) {
                int64_t sn = segs[3 * g], x0 = segs[3 * g + 1], x1 = segs[3 * g + 2];
                int64_t span = x1 - x0, taps = sn * kh * kw;
                if (dense_ok && sn >= DENSE_MIN && (sn * 32 >= span || 4 * taps >= span * (kh + kw))) {
                    int64_t m0 = imax(0, x0 - MARGIN), m1 = imin(w, x1 + MARGIN);
                    for (int64_t k = 0; k < kh; k++) {
                        int64_t s = slot[k];
                        int64_t *lo = S.lo_s + s * RUNS, *hi = S.hi_s + s * RUNS;
                        int64_t r = -1;
                        for (int64_t q = 0; q < S.nrun[s]; q++)
                            if (lo[q] <= x1 && x0 <= hi[q]) {
                                r = q;
                                break;
                            }
                        if (r >= 0) {
                            int64_t a_ = lo[r], z_ = hi[r];
                            if (x0 < a_) {
                                uncached_pass(B, &S, b, pr[k], m0, a_, s, gens[s]);
                                lo[r] = m0;
                            }
                            if (z_ < x1) {
                                uncached_pass(B, &S, b, pr[k], z_, m1, s, gens[s]);
                                hi[r] = m1;
                            }
                            continue;
                        }
                        uncached_pass(B, &S, b, pr[k], m0, m1, s, gens[s]);
                        r = S.nrun[s] < RUNS ? S.nrun[s] : runs_next[s];
                        if (S.nrun[s] < RUNS)
                            S.nrun[s] += 1;
                        else
                            runs_next[s] = (runs_next[s] + 1) % RUNS;
                        lo[r] = m0;
                        hi[r] = m1;
                    }
                    column_pass(&S, slot, res, x0, x1);
                    if (S.check) {
                        uint8_t *bs = bad + x0;
                        memset(bs, 0, (size_t)span);
                        for (int64_t k = 0; k < kh; k++) {
                            const uint8_t *hb = S.hbad + slot[k] * S.w + x0;
                            for (int64_t x = 0; x < span; x++) bs[x] |= hb[x];
                        }
                    }
                    int64_t left;
                    changed += finish_dense(B, b, i, oi, sn, x0, x1, res, bad, S.check, nrow, xs, &left);
                    for (int64_t m = 0; m < left; m++) {
                        int64_t x = xs[m];
                        int ok;
                        double t = careful_sep(B, &S, b, pr, x, &ok);
                        if (ok) changed += store(B, b, oi, x, t);
                    }
                    continue;
                }
                nsp += row_targets(B, i, x0, x1, xsp + nsp);
            }
            touch(B, b, pr, B->pk, xsp, nsp, rx);
            for (int64_t m = 0; m < nsp; m++) {
                int64_t x = xsp[m];
                int ok;
                const int64_t *pc = B->pcol + x * B->pkw;
                cell(B, b, pr[ry], pc[rx], S.cval_valid, &ok);
                if (!ok) continue;
                int bd = 0;
                for (int64_t k = 0; k < kh; k++) {
                    int64_t s = slot[k];
                    int64_t *st = S.stamp + s * S.w;
                    double *hn = S.hnum + s * S.w;
                    uint8_t *hb = S.hbad + s * S.w;
                    if (st[x] != gens[s]) {
                        st[x] = gens[s];
                        int64_t p = pr[k];
                        if (p < 0) {
                            hn[x] = B->cval;
                            hb[x] = !S.cval_valid;
                        } else {
                            /* locals, not B-> or S. fields: the stores to line[] (double) could
                             * alias those, which would reload them at every tap */
                            const T *restrict srow = B->src + b * B->src_sb + p * B->src_sr;
                            double *restrict line = S.line;
                            const double cval = B->cval, nd = B->nd;
                            const int has_nd = (int)B->has_nd, has_sup = (int)B->has_sup;
                            const int cval_bad = !S.cval_valid;
                            int hb_ = 0;
                            if (!S.check) {
                                for (int64_t j = 0; j < kw; j++) {
                                    int64_t q = pc[j];
                                    if (q < 0) {
                                        line[j] = cval;
                                        hb_ |= cval_bad;
                                    } else {
                                        line[j] = (double)srow[q];
                                    }
                                }
                            } else {
                                const uint8_t *srow_sup = B->sup + p * B->sup_w;
                                for (int64_t j = 0; j < kw; j++) {
                                    int64_t q = pc[j];
                                    if (q < 0) {
                                        line[j] = cval;
                                        hb_ |= cval_bad;
                                    } else {
                                        double v = (double)srow[q];
                                        line[j] = v;
                                        hb_ |= (has_nd && v == nd) || (has_sup && !srow_sup[q]);
                                    }
                                }
                            }
                            hn[x] = tap1d(line, 0, row, kw, S.sym_r);
                            hb[x] = (uint8_t)hb_;
                        }
                    }
                    S.cnum[k] = hn[x];
                    bd |= hb[x];
                }
                double t = tap1d(S.cnum, 0, column, kh, S.sym_c);
                if (t != t || bd) {
                    t = careful_sep(B, &S, b, pr, x, &ok);
                    if (!ok) continue;
                }
                changed += store(B, b, oi, x, t);
            }
        }
    }
    if (B->in_place) ring_flush_impl(B, ry, h);
done:
    free(ones);
    free(tags);
    free(gens);
    free(S.lo_s);
    free(S.hi_s);
    free(S.nrun);
    free(runs_next);
    free(S.stamp);
    free(S.hnum);
    free(S.hbad);
    free(used);
    free(slot);
    free(xs);
    free(xsp);
    free(segs);
    free(nzw);
    free(S.pline_buf);
    free(S.lbad);
    free(S.line);
    free(S.dline);
    free(S.cnum);
    free(S.cden);
    free(S.cfull);
    free(S.ra);
    free(S.rz);
    free(S.ca);
    free(S.cz);
    free(S.rows_);
    free(S.rw);
    free(S.cw);
    free(res);
    free(bad);
    free(nrow);
    return changed;
}

/* ---- rank filters ------------------------------------------------------------------------------ */

/* rank._kth: the k-th smallest of buf[:n], reordering buf (Wirth's selection, as in _nb). */
static double kth(double *buf, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double x = buf[k];
        int64_t i = lo, j = hi;
        for (;;) {
            while (buf[i] < x) i++;
            while (x < buf[j]) j--;
            if (i <= j) {
                double t = buf[i];
                buf[i] = buf[j];
                buf[j] = t;
                i++;
                j--;
            }
            if (i > j) break;
        }
        if (j < k) lo = i;
        if (k < i) hi = j;
    }
    return buf[k];
}

int64_t gm_rank(const gm_block *B, const uint8_t *footprint, int64_t kh, int64_t kw, int64_t kind) {
    int64_t h = B->h, w = B->w, nb = B->nb, ry = kh / 2, rx = kw / 2;
    double *buf = malloc(sizeof(double) * (size_t)(kh * kw));
    int64_t *xs = malloc(sizeof(int64_t) * (size_t)(w + 1));
    int64_t *segs = malloc(sizeof(int64_t) * 3 * ((size_t)w / 8 + 1));
    size_t nzw_n = (size_t)((B->tgt_w / 8 + 7) / 8 * 8) + 8;
    uint8_t *nzw = calloc(nzw_n, 1);
    int64_t changed = 0;
    if (!buf || !xs || !segs || !nzw) {
        changed = GM_ERR_NOMEM;
        goto done;
    }
    int cval_valid = !bad_value(B->cval, B->nd, B->has_nd);
    for (int64_t b = 0; b < nb; b++) {
        int64_t filled = 0;
        for (int64_t i = 0; i < h; i++) {
            int64_t oi;
            int64_t nseg = begin_row(B, b, ry, rx, i, &filled, segs, nzw, &oi);
            if (nseg < 0) {
                changed = nseg;
                goto done;
            }
            if (nseg == 0) continue;
            int64_t nt = 0;
            for (int64_t g = 0; g < nseg; g++) nt += row_targets(B, i, segs[3 * g + 1], segs[3 * g + 2], xs + nt);
            const int64_t *pr = B->prow + i * B->pk;
            for (int64_t mm = 0; mm < nt; mm++) {
                int64_t x = xs[mm];
                const int64_t *pc = B->pcol + x * B->pkw;
                int ok;
                cell(B, b, pr[ry], pc[rx], cval_valid, &ok);
                if (!ok) continue;
                int64_t n = 0;
                for (int64_t a = 0; a < kh; a++)
                    for (int64_t c = 0; c < kw; c++) {
                        if (!footprint[a * kw + c]) continue;
                        double v = cell(B, b, pr[a], pc[c], cval_valid, &ok);
                        if (ok) buf[n++] = v;
                    }
                if (n == 0) continue;
                double m;
                if (kind == 1) {
                    m = buf[0];
                    for (int64_t k = 1; k < n; k++)
                        if (buf[k] < m) m = buf[k];
                } else if (kind == 2) {
                    m = buf[0];
                    for (int64_t k = 1; k < n; k++)
                        if (buf[k] > m) m = buf[k];
                } else {
                    int64_t k = n / 2;
                    m = kth(buf, n, k);
                    if (n % 2 == 0) {
                        double below = buf[0];
                        for (int64_t q = 1; q < k; q++)
                            if (buf[q] > below) below = buf[q];
                        m = (below + m) / 2.0;
                    }
                }
                changed += store(B, b, oi, x, m);
            }
        }
    }
    if (B->in_place) ring_flush_impl(B, ry, h);
done:
    free(buf);
    free(xs);
    free(segs);
    free(nzw);
    return changed;
}

/* ---- small helpers the Python side calls --------------------------------------------------------- */

void gm_ring_flush(const gm_block *B, int64_t ry, int64_t before) { ring_flush_impl(B, ry, before); }

/* cells.any_invalid: whether band b holds an invalid cell, or the maps use an invalid cval. */
int64_t gm_any_invalid(const gm_block *B, int64_t b, int64_t in_h, int64_t in_w, int64_t cval_valid) {
    if (B->has_sup) return 1;
    if (!cval_valid) {
        for (int64_t k = 0; k < B->h * B->pk; k++)
            if (B->prow[k] < 0) return 1;
        for (int64_t k = 0; k < B->w * B->pkw; k++)
            if (B->pcol[k] < 0) return 1;
    }
    for (int64_t r = 0; r < in_h; r++) {
        const T *row = B->src + b * B->src_sb + r * B->src_sr;
        int bad = 0;
        for (int64_t c = 0; c < in_w; c++) {
            double v = (double)row[c];
            bad |= (v != v) | ((int)B->has_nd & (v == B->nd));
        }
        if (bad) return 1;
    }
    return 0;
}

/* rows.gather_center: out[b, i, x] = src[b, prow[i, ry], pcol[x, rx]] for every band. */
void gm_gather_center(const gm_block *B, int64_t ry, int64_t rx) {
    for (int64_t b = 0; b < B->nb; b++) fill(B, b, ry, rx, 0, B->h);
}

/* rows.first_last_readers: first and last output row reading each row j < n. */
void gm_first_last_readers(const int64_t *prow, int64_t h, int64_t k, int64_t n, int64_t *first, int64_t *last) {
    for (int64_t j = 0; j < n; j++) {
        first[j] = INT64_MAX;
        last[j] = -1;
    }
    for (int64_t i = 0; i < h; i++)
        for (int64_t q = 0; q < k; q++) {
            int64_t j = prow[i * k + q];
            if (j >= 0) {
                if (i < first[j]) first[j] = i;
                if (i > last[j]) last[j] = i;
            }
        }
}

/* cells.count_changed: per tile of th x tw output pixels, the pixels where any band of after[:, i, x]
 * differs bit-wise from before[:, rows[i], cols[x]]. counts: (ceil(h/th), ceil(w/tw)), zeroed here.
 * Not line for line with numba (integer counts: any order gives the same): each row is compared in
 * chunks, band after band, into one flag per pixel (a loop the compiler vectorises where the columns
 * are one contiguous run, the usual case), then the flags are summed per tile: 3-4x the per-pixel
 * loop with its early exit, a division and a gather per pixel. */
#define CHANGED_CHUNK 2048
void gm_count_changed(const U *before, int64_t bsb, int64_t bsr, const int64_t *rows, const int64_t *cols,
                      const U *after, int64_t nb, int64_t h, int64_t w, int64_t th, int64_t tw, int64_t *counts) {
    int64_t ncols = (w + tw - 1) / tw;
    memset(counts, 0, sizeof(int64_t) * (size_t)(((h + th - 1) / th) * ncols));
    int64_t c0 = w > 0 ? cols[0] : 0;
    int run = 1; /* cols == c0, c0 + 1, ... */
    for (int64_t x = 1; x < w && run; x++)
        run = cols[x] == c0 + x;
    uint8_t flag[CHANGED_CHUNK];
    for (int64_t i = 0; i < h; i++) {
        int64_t r = rows[i];
        int64_t *ct = counts + (i / th) * ncols;
        for (int64_t x0 = 0; x0 < w; x0 += CHANGED_CHUNK) {
            int64_t n = imin(CHANGED_CHUNK, w - x0);
            memset(flag, 0, (size_t)n);
            for (int64_t b = 0; b < nb; b++) {
                const U *src = before + b * bsb + r * bsr;
                const U *dst = after + (b * h + i) * w + x0;
                if (run) {
                    const U *s = src + c0 + x0;
                    for (int64_t k = 0; k < n; k++)
                        flag[k] |= s[k] != dst[k];
                } else {
                    const int64_t *cc = cols + x0;
                    for (int64_t k = 0; k < n; k++)
                        flag[k] |= src[cc[k]] != dst[k];
                }
            }
            for (int64_t k = 0; k < n;) {
                int64_t t = (x0 + k) / tw;
                int64_t stop = imin(n, (t + 1) * tw - x0);
                int64_t sum = 0;
                for (; k < stop; k++)
                    sum += flag[k];
                ct[t] += sum;
            }
        }
    }
}

/* The layout version the Python side checks (bump with any change of gm_block or a signature). */
int64_t gm_abi(void) { return 1; }
