/* lbflow - derived quantities.  All sums run in a fixed order in double
 * precision, so results are reproducible. */
#include "diagnostics.h"

#include <math.h>
#include <string.h>

static double column_flux(const geometry_t *geom, const double *rho, const double *ux, int x)
{
    double q = 0.0;
    int y;
    for (y = 0; y < geom->ny; y++) {
        const long c = (long)y * geom->nx + x;
        if (geom->cell[c] != CELL_WALL)
            q += rho[c] * ux[c];
    }
    return q;
}

void diagnostics_compute(const geometry_t *geom, const double *rho, const double *ux, const double *uy,
                         diagnostics_t *d)
{
    const int nx = geom->nx, ny = geom->ny;
    const long n = (long)nx * ny;
    double umax2 = 0.0;
    long c;
    int x, y;

    memset(d, 0, sizeof(*d));
    for (c = 0; c < n; c++) {
        double u2;
        if (geom->cell[c] == CELL_WALL)
            continue;
        d->total_mass += rho[c];
        u2 = ux[c] * ux[c] + uy[c] * uy[c];
        if (u2 > umax2 || u2 != u2) /* propagate NaN */
            umax2 = u2;
        if (geom->cell[c] == CELL_INLET)
            d->flow_rate_inlet += rho[c] * ux[c];
        else if (geom->cell[c] == CELL_OUTLET)
            d->flow_rate_outlet += rho[c] * ux[c];
    }
    d->max_velocity = sqrt(umax2);
    d->mid_x = nx / 2;
    d->flow_rate_mid = column_flux(geom, rho, ux, d->mid_x);
    if (geom->n_inlet == 0)
        d->flow_rate_inlet = column_flux(geom, rho, ux, 0);
    if (geom->n_outlet == 0)
        d->flow_rate_outlet = column_flux(geom, rho, ux, nx - 1);

    /* outlet segments: maximal vertical runs of 'O' cells in one column */
    for (x = 0; x < nx; x++) {
        y = 0;
        while (y < ny) {
            int y0;
            double q = 0.0;
            if (geom->cell[(long)y * nx + x] != CELL_OUTLET) {
                y++;
                continue;
            }
            y0 = y;
            while (y < ny && geom->cell[(long)y * nx + x] == CELL_OUTLET) {
                c = (long)y * nx + x;
                q += rho[c] * ux[c];
                y++;
            }
            if (d->n_outlet_segments < DIAG_MAX_SEGMENTS) {
                const int s = d->n_outlet_segments++;
                d->outlet_segment_flow[s] = q;
                d->outlet_segment_x[s] = x;
                d->outlet_segment_y0[s] = y0;
                d->outlet_segment_y1[s] = y - 1;
            }
        }
    }
}

double diagnostics_residual(const geometry_t *geom, const double *ux, const double *uy, const double *ux_prev,
                            const double *uy_prev)
{
    const long n = (long)geom->nx * geom->ny;
    double num = 0.0, den = 0.0;
    long c;
    for (c = 0; c < n; c++) {
        const double dx = ux[c] - ux_prev[c], dy = uy[c] - uy_prev[c];
        if (geom->cell[c] == CELL_WALL)
            continue;
        num += dx * dx + dy * dy;
        den += ux[c] * ux[c] + uy[c] * uy[c];
    }
    return den > 0.0 ? sqrt(num / den) : 0.0;
}
