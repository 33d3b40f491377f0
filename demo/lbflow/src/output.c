/* lbflow - result files. */
#include "output.h"

#include "lbflow.h"

#include <math.h>
#include <stdio.h>

int output_write_velocity(const char *path, const geometry_t *geom, const double *rho, const double *ux,
                          const double *uy)
{
    FILE *fp = fopen(path, "w");
    int x, y;

    if (!fp)
        return -1;
    fprintf(fp, "x,y,ux,uy,rho\n");
    for (y = 0; y < geom->ny; y++) {
        for (x = 0; x < geom->nx; x++) {
            const long c = (long)y * geom->nx + x;
            if (geom->cell[c] == CELL_WALL)
                continue;
            /* "+ 0.0" turns a negative zero into a positive one */
            fprintf(fp, "%d,%d,%.6e,%.6e,%.8f\n", x, y, ux[c] + 0.0, uy[c] + 0.0, rho[c]);
        }
    }
    if (ferror(fp)) {
        fclose(fp);
        return -1;
    }
    return fclose(fp) == 0 ? 0 : -1;
}

static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(fp, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(fp, "\\u%04x", ch);
        else
            fputc(ch, fp);
    }
    fputc('"', fp);
}

static void json_number(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, "%.10g", v + 0.0);
    else
        fputs("null", fp);
}

int output_write_summary(const char *path, const run_summary_t *s)
{
    const diagnostics_t *d = &s->diag;
    FILE *fp = fopen(path, "w");
    int i;

    if (!fp)
        return -1;
    fprintf(fp, "{\n");
    fprintf(fp, "  \"code\": \"lbflow\",\n");
    fprintf(fp, "  \"version\": \"%s\",\n", LBFLOW_VERSION);
    fprintf(fp, "  \"geometry\": ");
    json_string(fp, s->geom->name);
    fprintf(fp, ",\n  \"geometry_file\": ");
    json_string(fp, s->geometry_file);
    fprintf(fp, ",\n");
    fprintf(fp, "  \"nx\": %d,\n", s->geom->nx);
    fprintf(fp, "  \"ny\": %d,\n", s->geom->ny);
    fprintf(fp, "  \"fluid_cells\": %ld,\n", s->geom->n_fluid + s->geom->n_inlet + s->geom->n_outlet);
    fprintf(fp, "  \"inlet_cells\": %ld,\n", s->geom->n_inlet);
    fprintf(fp, "  \"outlet_cells\": %ld,\n", s->geom->n_outlet);
    fprintf(fp, "  \"boundary\": \"%s\",\n", s->boundary);
    fprintf(fp, "  \"steps\": %ld,\n", s->steps);
    fprintf(fp, "  \"tau\": ");
    json_number(fp, s->tau);
    fprintf(fp, ",\n  \"viscosity\": ");
    json_number(fp, s->viscosity);
    fprintf(fp, ",\n  \"force\": ");
    json_number(fp, s->force);
    fprintf(fp, ",\n  \"precision\": \"%s\",\n", LBFLOW_PRECISION_NAME);
    fprintf(fp, "  \"openmp_threads\": %d,\n", s->openmp_threads);
    fprintf(fp, "  \"total_mass\": ");
    json_number(fp, d->total_mass);
    fprintf(fp, ",\n  \"initial_mass\": ");
    json_number(fp, s->initial_mass);
    fprintf(fp, ",\n  \"mass_change_relative\": ");
    json_number(fp, s->initial_mass > 0.0 ? (d->total_mass - s->initial_mass) / s->initial_mass : 0.0);
    fprintf(fp, ",\n  \"mid_x\": %d,\n", d->mid_x);
    fprintf(fp, "  \"flow_rate_mid\": ");
    json_number(fp, d->flow_rate_mid);
    fprintf(fp, ",\n  \"flow_rate_inlet\": ");
    json_number(fp, d->flow_rate_inlet);
    fprintf(fp, ",\n  \"flow_rate_outlet\": ");
    json_number(fp, d->flow_rate_outlet);
    fprintf(fp, ",\n  \"outlets\": [");
    for (i = 0; i < d->n_outlet_segments; i++) {
        fprintf(fp, "%s\n    {\"x\": %d, \"y_min\": %d, \"y_max\": %d, \"flow_rate\": ", i ? "," : "",
                d->outlet_segment_x[i], d->outlet_segment_y0[i], d->outlet_segment_y1[i]);
        json_number(fp, d->outlet_segment_flow[i]);
        fprintf(fp, "}");
    }
    fprintf(fp, "%s],\n", d->n_outlet_segments ? "\n  " : "");
    fprintf(fp, "  \"max_velocity\": ");
    json_number(fp, d->max_velocity);
    fprintf(fp, ",\n  \"residual\": ");
    if (s->has_residual)
        json_number(fp, s->residual);
    else
        fputs("null", fp);
    fprintf(fp, ",\n  \"wall_time_s\": %.6f,\n", s->wall_time_s);
    fprintf(fp, "  \"mlups\": %.3f", s->mlups);
    if (s->steer) {
        fprintf(fp, ",\n  \"steering\": ");
        steer_write_json(fp, s->steer, s->force);
    }
    fprintf(fp, "\n}\n");
    if (ferror(fp)) {
        fclose(fp);
        return -1;
    }
    return fclose(fp) == 0 ? 0 : -1;
}
