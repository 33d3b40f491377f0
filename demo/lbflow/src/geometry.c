/* lbflow - reading and validating geometry files. */
#include "geometry.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEOMETRY_MAGIC "lbflow-geometry"

typedef struct {
    FILE *fp;
    char *buf;
    size_t cap;
    long lineno;
} line_reader_t;

/* Read the next line into r->buf without the line terminator and without
 * trailing white space (spaces, tabs, '\r').  Returns the length, or -1 at
 * end of file, or -2 if memory runs out. */
static long read_line(line_reader_t *r)
{
    size_t len = 0;
    int c;
    int got_any = 0;

    while ((c = getc(r->fp)) != EOF) {
        got_any = 1;
        if (c == '\n')
            break;
        if (len + 1 >= r->cap) {
            size_t ncap = r->cap ? 2 * r->cap : 256;
            char *nbuf = realloc(r->buf, ncap);
            if (!nbuf)
                return -2;
            r->buf = nbuf;
            r->cap = ncap;
        }
        /* a NUL byte would end the string early: replace it by something
         * that is rejected as a cell character */
        r->buf[len++] = (char)(c == '\0' ? '\x01' : c);
    }
    if (!got_any)
        return -1;
    if (!r->buf) { /* empty line as very first read */
        r->buf = malloc(256);
        if (!r->buf)
            return -2;
        r->cap = 256;
    }
    while (len > 0 && (r->buf[len - 1] == ' ' || r->buf[len - 1] == '\t' || r->buf[len - 1] == '\r'))
        len--;
    r->buf[len] = '\0';
    r->lineno++;
    return (long)len;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parse a strictly positive decimal integer starting at *s; advances *s. */
static int parse_dim(const char **s, long *out)
{
    const char *p = *s;
    char *end;
    long v;

    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    v = strtol(p, &end, 10);
    if (errno != 0)
        return -1;
    *out = v;
    *s = end;
    return 0;
}

static void base_name(const char *path, char *out, size_t outlen)
{
    const char *b = path;
    const char *p;
    size_t n;

    for (p = path; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".gmy") == 0)
        n -= 4;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

int geometry_read(const char *path, geometry_t *geom, char *err, size_t errlen)
{
    line_reader_t r;
    long len, nx, ny, x, y, row;
    const char *p;
    int rc = -1;

    memset(geom, 0, sizeof(*geom));
    memset(&r, 0, sizeof(r));

    r.fp = fopen(path, "rb");
    if (!r.fp) {
        set_err(err, errlen, "cannot open geometry file '%s': %s", path, strerror(errno));
        return -1;
    }

    /* line 1: magic and version */
    len = read_line(&r);
    if (len == -2)
        goto oom;
    if (len < 0 && ferror(r.fp)) {
        set_err(err, errlen, "cannot read geometry file '%s': %s", path, strerror(errno));
        goto done;
    }
    if (len < 0) {
        set_err(err, errlen, "%s: empty file, expected header '" GEOMETRY_MAGIC " 1'", path);
        goto done;
    }
    {
        size_t m = strlen(GEOMETRY_MAGIC);
        long version;
        if (strncmp(r.buf, GEOMETRY_MAGIC, m) != 0 || (r.buf[m] != ' ' && r.buf[m] != '\t')) {
            set_err(err, errlen, "%s:1: not an lbflow geometry file (expected header '" GEOMETRY_MAGIC " 1')",
                    path);
            goto done;
        }
        p = r.buf + m;
        if (parse_dim(&p, &version) != 0 || *p != '\0') {
            set_err(err, errlen, "%s:1: malformed header, expected '" GEOMETRY_MAGIC " 1'", path);
            goto done;
        }
        if (version != 1) {
            set_err(err, errlen, "%s:1: unsupported geometry format version %ld (supported: 1)", path, version);
            goto done;
        }
    }

    /* line 2: nx ny */
    len = read_line(&r);
    if (len == -2)
        goto oom;
    if (len < 0) {
        set_err(err, errlen, "%s: unexpected end of file, expected '<nx> <ny>' on line 2", path);
        goto done;
    }
    p = r.buf;
    if (parse_dim(&p, &nx) != 0 || (*p != ' ' && *p != '\t') || parse_dim(&p, &ny) != 0 || *p != '\0') {
        set_err(err, errlen, "%s:2: expected two integers '<nx> <ny>', got '%.40s'", path, r.buf);
        goto done;
    }
    if (nx < 3 || ny < 3 || nx > GEOMETRY_MAX_DIM || ny > GEOMETRY_MAX_DIM) {
        set_err(err, errlen, "%s:2: domain size %ldx%ld out of range (3..%d in each direction)", path, nx, ny,
                GEOMETRY_MAX_DIM);
        goto done;
    }

    geom->nx = (int)nx;
    geom->ny = (int)ny;
    geom->cell = malloc((size_t)nx * (size_t)ny);
    if (!geom->cell)
        goto oom;

    /* ny rows, the first one is the top of the domain (y = ny - 1) */
    for (row = 0; row < ny; row++) {
        len = read_line(&r);
        if (len == -2)
            goto oom;
        if (len < 0) {
            set_err(err, errlen, "%s: unexpected end of file after %ld of %ld rows", path, row, ny);
            goto done;
        }
        if (len != nx) {
            set_err(err, errlen, "%s:%ld: row %ld has %ld cells, expected %ld", path, r.lineno, row + 1, len, nx);
            goto done;
        }
        y = ny - 1 - row;
        for (x = 0; x < nx; x++) {
            unsigned char t;
            switch (r.buf[x]) {
            case '#': t = CELL_WALL; break;
            case '.': t = CELL_FLUID; geom->n_fluid++; break;
            case 'I': t = CELL_INLET; geom->n_inlet++; break;
            case 'O': t = CELL_OUTLET; geom->n_outlet++; break;
            default:
                if (isprint((unsigned char)r.buf[x]))
                    set_err(err, errlen, "%s:%ld: invalid cell character '%c' in column %ld (allowed: # . I O)",
                            path, r.lineno, r.buf[x], x + 1);
                else
                    set_err(err, errlen, "%s:%ld: invalid byte 0x%02x in column %ld (allowed: # . I O)", path,
                            r.lineno, (unsigned)(unsigned char)r.buf[x], x + 1);
                goto done;
            }
            geom->cell[y * nx + x] = t;
        }
    }

    /* only blank lines may follow */
    while ((len = read_line(&r)) >= 0) {
        if (len > 0) {
            set_err(err, errlen, "%s:%ld: unexpected data after the %ld grid rows", path, r.lineno, ny);
            goto done;
        }
    }
    if (len == -2)
        goto oom;
    if (ferror(r.fp)) {
        set_err(err, errlen, "%s: read error", path);
        goto done;
    }

    /* semantic checks */
    if (geom->n_fluid == 0) {
        set_err(err, errlen, "%s: geometry has no fluid ('.') cells", path);
        goto done;
    }
    if ((geom->n_inlet > 0) != (geom->n_outlet > 0)) {
        set_err(err, errlen, "%s: geometry has %s cells but no %s cells", path,
                geom->n_inlet > 0 ? "inlet 'I'" : "outlet 'O'", geom->n_inlet > 0 ? "outlet 'O'" : "inlet 'I'");
        goto done;
    }
    for (y = 0; y < ny; y++) {
        for (x = 0; x < nx; x++) {
            unsigned char t = geom->cell[y * nx + x];
            if (t == CELL_INLET && (x + 1 >= nx || geom->cell[y * nx + x + 1] != CELL_FLUID)) {
                set_err(err, errlen, "%s:%ld: inlet cell in column %ld needs a fluid '.' cell to its right", path,
                        3 + (ny - 1 - y), x + 1);
                goto done;
            }
            if (t == CELL_OUTLET && (x == 0 || geom->cell[y * nx + x - 1] != CELL_FLUID)) {
                set_err(err, errlen, "%s:%ld: outlet cell in column %ld needs a fluid '.' cell to its left", path,
                        3 + (ny - 1 - y), x + 1);
                goto done;
            }
        }
    }

    base_name(path, geom->name, sizeof(geom->name));
    rc = 0;
    goto done;

oom:
    set_err(err, errlen, "%s: out of memory while reading the geometry", path);
done:
    fclose(r.fp);
    free(r.buf);
    if (rc != 0)
        geometry_free(geom);
    return rc;
}

void geometry_free(geometry_t *geom)
{
    free(geom->cell);
    geom->cell = NULL;
}
