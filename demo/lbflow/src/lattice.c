/* lbflow - D2Q9 BGK lattice Boltzmann kernel.
 *
 * Velocities (lattice units):        6   2   5
 *   0 rest, 1 +x, 2 +y, 3 -x, 4 -y,    \  |  /
 *   5 (+1,+1), 6 (-1,+1),            3 -- 0 -- 1
 *   7 (-1,-1), 8 (+1,-1)               /  |  \
 *                                    7   4   8
 *
 * Collision: BGK with relaxation time tau and the Guo, Zheng & Shi (2002)
 * forcing term for a uniform body force density F along +x; the macroscopic
 * velocity is u = (sum_i f_i c_i + F/2) / rho.  The collision runs in place
 * over contiguous arrays, so the compiler can vectorise it.
 * Streaming: pull scheme with a precomputed source for every (cell,
 * direction).  A population whose upstream cell is a wall is the one that
 * left this cell in the opposite direction (half-way bounce-back: no-slip
 * wall half-way between fluid and wall cell centres).  The domain is
 * periodic in x and y wherever fluid reaches the domain edge.
 * Open boundaries: before each collision, inlet/outlet cells are set to
 *   f_i = f_i^eq(rho_b, u_nb) + (f_i(nb) - f_i^eq(rho_nb, u_nb))
 * (non-equilibrium extrapolation, Guo, Zheng & Shi 2002) from their fluid
 * neighbour nb, i.e. fixed density and zero-gradient velocity.
 */
#include "lattice.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#define LB_OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define LB_OMP_FOR
#endif

static const int cx[LB_Q] = {0, 1, 0, -1, 0, 1, -1, -1, 1};
static const int cy[LB_Q] = {0, 0, 1, 0, -1, 1, 1, -1, -1};
static const int opp[LB_Q] = {0, 3, 4, 1, 2, 7, 8, 5, 6};
static const real_t w[LB_Q] = {(real_t)(4.0 / 9.0),  (real_t)(1.0 / 9.0),  (real_t)(1.0 / 9.0),
                               (real_t)(1.0 / 9.0),  (real_t)(1.0 / 9.0),  (real_t)(1.0 / 36.0),
                               (real_t)(1.0 / 36.0), (real_t)(1.0 / 36.0), (real_t)(1.0 / 36.0)};

static inline real_t feq(int i, real_t rho, real_t ux, real_t uy, real_t usq)
{
    const real_t cu = (real_t)cx[i] * ux + (real_t)cy[i] * uy;
    return w[i] * rho * ((real_t)1 + (real_t)3 * cu + (real_t)4.5 * cu * cu - (real_t)1.5 * usq);
}

/* density and physical velocity of stored cell k */
static void moments(const real_t *f, long na, long k, real_t half_force, real_t *rho, real_t *ux, real_t *uy)
{
    real_t r = 0, jx = 0, jy = 0;
    int i;
    for (i = 0; i < LB_Q; i++) {
        const real_t fi = f[(long)i * na + k];
        r += fi;
        jx += (real_t)cx[i] * fi;
        jy += (real_t)cy[i] * fi;
    }
    *rho = r;
    *ux = (jx + half_force) / r;
    *uy = jy / r;
}

int lattice_init(lattice_t *lat, const geometry_t *geom, double tau, double force)
{
    const int nx = geom->nx, ny = geom->ny;
    const long n = (long)nx * ny;
    long *index_of = NULL; /* cell -> compact index, -1 for walls */
    long c, k, j, na;
    int i;

    memset(lat, 0, sizeof(*lat));
    lat->nx = nx;
    lat->ny = ny;
    lat->n = n;
    lat->tau = (real_t)tau;
    lat->omega = (real_t)(1.0 / tau);
    lat->force = (real_t)force;

    for (c = 0; c < n; c++)
        if (geom->cell[c] != CELL_WALL)
            lat->nactive++;
    na = lat->nactive;
    lat->nopen = geom->n_inlet + geom->n_outlet;

    index_of = malloc((size_t)n * sizeof(long));
    lat->active = malloc((size_t)na * sizeof(long));
    lat->src = malloc((size_t)na * LB_Q * sizeof(int));
    lat->open_k = malloc((size_t)(lat->nopen > 0 ? lat->nopen : 1) * sizeof(long));
    lat->open_nb_k = malloc((size_t)(lat->nopen > 0 ? lat->nopen : 1) * sizeof(long));
    lat->open_rho = malloc((size_t)(lat->nopen > 0 ? lat->nopen : 1) * sizeof(real_t));
    lat->f = malloc((size_t)na * LB_Q * sizeof(real_t));
    lat->ftmp = malloc((size_t)na * LB_Q * sizeof(real_t));
    if (!index_of || !lat->active || !lat->src || !lat->open_k || !lat->open_nb_k || !lat->open_rho || !lat->f ||
        !lat->ftmp) {
        free(index_of);
        lattice_free(lat);
        return -1;
    }

    k = 0;
    for (c = 0; c < n; c++) {
        if (geom->cell[c] == CELL_WALL) {
            index_of[c] = -1;
        } else {
            index_of[c] = k;
            lat->active[k++] = c;
        }
    }

    j = 0;
    for (k = 0; k < na; k++) {
        c = lat->active[k];
        {
            const int x = (int)(c % nx), y = (int)(c / nx);
            const unsigned char t = geom->cell[c];
            for (i = 0; i < LB_Q; i++) {
                /* population i arrives from the upstream cell x - c_i */
                const int xu = (x - cx[i] + nx) % nx;
                const int yu = (y - cy[i] + ny) % ny;
                const long ku = index_of[(long)yu * nx + xu];
                if (ku >= 0)
                    lat->src[(long)i * na + k] = (int)((long)i * na + ku);
                else
                    lat->src[(long)i * na + k] = (int)((long)opp[i] * na + k); /* bounce-back */
            }
            if (t == CELL_INLET || t == CELL_OUTLET) {
                lat->open_k[j] = k;
                lat->open_nb_k[j] = index_of[t == CELL_INLET ? c + 1 : c - 1];
                lat->open_rho[j] = (real_t)1; /* same density at inlet and outlet: force-driven flow */
                j++;
            }
        }
    }
    free(index_of);

    /* fluid at rest with unit density everywhere */
    for (i = 0; i < LB_Q; i++)
        for (k = 0; k < na; k++) {
            lat->f[(long)i * na + k] = w[i];
            lat->ftmp[(long)i * na + k] = w[i];
        }
    return 0;
}

static void apply_open_boundaries(lattice_t *lat)
{
    const long na = lat->nactive;
    const real_t half_force = (real_t)0.5 * lat->force;
    real_t *f = lat->f;
    long j;

    for (j = 0; j < lat->nopen; j++) {
        const long k = lat->open_k[j];
        const long nb = lat->open_nb_k[j];
        const real_t rho_b = lat->open_rho[j];
        real_t rho, ux, uy, usq;
        int i;
        moments(f, na, nb, half_force, &rho, &ux, &uy);
        usq = ux * ux + uy * uy;
        for (i = 0; i < LB_Q; i++)
            f[(long)i * na + k] = feq(i, rho_b, ux, uy, usq) + (f[(long)i * na + nb] - feq(i, rho, ux, uy, usq));
    }
}

/* post-collision value of one population: BGK relaxation towards the
 * equilibrium plus the Guo forcing term (force along x only).
 * cu = c_i . u, cxi = x component of c_i. */
static inline real_t relax(real_t fi, real_t wi, real_t cu, real_t cxi, real_t rho, real_t ux, real_t usq15,
                           real_t omega, real_t src)
{
    const real_t eq = wi * rho * ((real_t)1 + (real_t)3 * cu + (real_t)4.5 * cu * cu - usq15);
    const real_t s = wi * src * ((real_t)3 * (cxi - ux) + (real_t)9 * cu * cxi);
    return fi - omega * (fi - eq) + s;
}

/* In-place collision of cells [0, na); the nine arrays are disjoint. */
static void collide(long na, real_t omega, real_t force, real_t *restrict f0, real_t *restrict f1,
                    real_t *restrict f2, real_t *restrict f3, real_t *restrict f4, real_t *restrict f5,
                    real_t *restrict f6, real_t *restrict f7, real_t *restrict f8)
{
    const real_t half_force = (real_t)0.5 * force;
    const real_t src = ((real_t)1 - (real_t)0.5 * omega) * force; /* Guo prefactor * F */
    const real_t W0 = (real_t)(4.0 / 9.0), W1 = (real_t)(1.0 / 9.0), W2 = (real_t)(1.0 / 36.0);
    const real_t one = (real_t)1, zero = (real_t)0;
    long k;

    LB_OMP_FOR
    for (k = 0; k < na; k++) {
        const real_t a0 = f0[k], a1 = f1[k], a2 = f2[k], a3 = f3[k], a4 = f4[k];
        const real_t a5 = f5[k], a6 = f6[k], a7 = f7[k], a8 = f8[k];
        const real_t rho = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + a8;
        const real_t jx = (a1 - a3) + ((a5 - a6) + (a8 - a7));
        const real_t jy = (a2 - a4) + ((a5 - a7) + (a6 - a8));
        const real_t ux = (jx + half_force) / rho;
        const real_t uy = jy / rho;
        const real_t usq15 = (real_t)1.5 * (ux * ux + uy * uy);

        f0[k] = relax(a0, W0, zero, zero, rho, ux, usq15, omega, src);
        f1[k] = relax(a1, W1, ux, one, rho, ux, usq15, omega, src);
        f2[k] = relax(a2, W1, uy, zero, rho, ux, usq15, omega, src);
        f3[k] = relax(a3, W1, -ux, -one, rho, ux, usq15, omega, src);
        f4[k] = relax(a4, W1, -uy, zero, rho, ux, usq15, omega, src);
        f5[k] = relax(a5, W2, ux + uy, one, rho, ux, usq15, omega, src);
        f6[k] = relax(a6, W2, uy - ux, -one, rho, ux, usq15, omega, src);
        f7[k] = relax(a7, W2, -ux - uy, -one, rho, ux, usq15, omega, src);
        f8[k] = relax(a8, W2, ux - uy, one, rho, ux, usq15, omega, src);
    }
}

static void stream(long total, const int *restrict src, const real_t *restrict from, real_t *restrict to)
{
    long j;
    LB_OMP_FOR
    for (j = 0; j < total; j++)
        to[j] = from[src[j]];
}

void lattice_step(lattice_t *lat)
{
    const long na = lat->nactive;
    real_t *f = lat->f;
    real_t *swap;

    if (lat->nopen > 0)
        apply_open_boundaries(lat);
    collide(na, lat->omega, lat->force, f, f + na, f + 2 * na, f + 3 * na, f + 4 * na, f + 5 * na, f + 6 * na,
            f + 7 * na, f + 8 * na);
    stream(na * LB_Q, lat->src, f, lat->ftmp);

    swap = lat->f;
    lat->f = lat->ftmp;
    lat->ftmp = swap;
}

void lattice_macroscopic(lattice_t *lat, double *rho, double *ux, double *uy)
{
    const long n = lat->n;
    const real_t half_force = (real_t)0.5 * lat->force;
    long c, k;

    if (lat->nopen > 0)
        apply_open_boundaries(lat);

    for (c = 0; c < n; c++) {
        if (rho)
            rho[c] = 0.0;
        if (ux)
            ux[c] = 0.0;
        if (uy)
            uy[c] = 0.0;
    }
    for (k = 0; k < lat->nactive; k++) {
        real_t r, vx, vy;
        c = lat->active[k];
        moments(lat->f, lat->nactive, k, half_force, &r, &vx, &vy);
        if (rho)
            rho[c] = (double)r;
        if (ux)
            ux[c] = (double)vx;
        if (uy)
            uy[c] = (double)vy;
    }
}

void lattice_free(lattice_t *lat)
{
    free(lat->active);
    free(lat->src);
    free(lat->open_k);
    free(lat->open_nb_k);
    free(lat->open_rho);
    free(lat->f);
    free(lat->ftmp);
    memset(lat, 0, sizeof(*lat));
}
