/* lbflow - derived quantities: mass, flow rates, velocities, convergence. */
#ifndef LBFLOW_DIAGNOSTICS_H
#define LBFLOW_DIAGNOSTICS_H

#include "geometry.h"

#define DIAG_MAX_SEGMENTS 16

typedef struct {
    double total_mass;     /* sum of rho over all non-wall cells */
    double max_velocity;   /* max |u| over non-wall cells */
    int mid_x;             /* column of the middle cross-section (nx / 2) */
    double flow_rate_mid;  /* sum of rho*ux over non-wall cells in column mid_x */
    double flow_rate_inlet;  /* over 'I' cells, or column 0 if there are none */
    double flow_rate_outlet; /* over 'O' cells, or column nx-1 if there are none */
    int n_outlet_segments;   /* vertical runs of 'O' cells (one per outlet vessel) */
    double outlet_segment_flow[DIAG_MAX_SEGMENTS];
    int outlet_segment_x[DIAG_MAX_SEGMENTS];
    int outlet_segment_y0[DIAG_MAX_SEGMENTS]; /* lowest y of the run */
    int outlet_segment_y1[DIAG_MAX_SEGMENTS]; /* highest y of the run */
} diagnostics_t;

/* Fields are nx*ny arrays indexed y*nx + x (walls hold 0). */
void diagnostics_compute(const geometry_t *geom, const double *rho, const double *ux, const double *uy,
                         diagnostics_t *d);

/* Relative L2 change of the velocity field: |u - u_prev| / |u| (0 if |u| = 0). */
double diagnostics_residual(const geometry_t *geom, const double *ux, const double *uy, const double *ux_prev,
                            const double *uy_prev);

#endif /* LBFLOW_DIAGNOSTICS_H */
