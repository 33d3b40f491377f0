/* lbflow - 2-D lattice Boltzmann flow through a vessel: command line and
 * driver. */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#endif

#include "diagnostics.h"
#include "geometry.h"
#include "lattice.h"
#include "lbflow.h"
#include "output.h"
#include "steer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define DEFAULT_STEPS 5000L
#define DEFAULT_TAU 1.0
#define DEFAULT_FORCE 5.0e-5
#define DEFAULT_OUTPUT_EVERY 1000L
#define MAX_STEPS 1000000000L
#define STABILITY_CHECK_EVERY 500L
#define UNSTABLE_VELOCITY 0.5 /* lattice units; the sound speed is 0.577 */
#define DEFAULT_STEER_EVERY 100L
#define MAX_PORT 65535L

typedef struct {
    const char *geometry;
    long steps;
    double tau;
    double force;
    long output_every;
    long steer_port; /* -1: no steering socket */
    long steer_every;
} options_t;

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: lbflow --geometry FILE [--steps N] [--tau T] [--force F] [--output-every N]\n"
            "              [--steer-port P [--steer-every N]]\n"
            "\n"
            "2-D D2Q9 lattice Boltzmann (BGK) solver for flow through a vessel.\n"
            "\n"
            "options:\n"
            "  --geometry FILE     geometry file (format: 'lbflow-geometry 1'; see README.md)\n"
            "  --steps N           number of time steps, N >= 0 (default %ld)\n"
            "  --tau T             BGK relaxation time, T > 0.5 (default %g);\n"
            "                      kinematic viscosity = (T - 0.5) / 3\n"
            "  --force F           body force density along +x (default %g)\n"
            "  --output-every N    progress line every N steps, 0 = none (default %ld)\n"
            "  --steer-port P      listen for steering commands on TCP port P (0 = any free\n"
            "                      port) and publish host and port in steer.json\n"
            "  --steer-every N     look for steering commands every N steps (default %ld)\n"
            "  --help              show this help and exit\n"
            "  --version           show version and precision and exit\n"
            "\n"
            "Writes velocity.csv and summary.json to the current directory.\n"
            "Exit codes: 0 success, 1 runtime error, 2 bad arguments or geometry,\n"
            "3 simulation unstable.\n",
            DEFAULT_STEPS, DEFAULT_TAU, DEFAULT_FORCE, DEFAULT_OUTPUT_EVERY, DEFAULT_STEER_EVERY);
}

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("lbflow: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        die(LBFLOW_EXIT_USAGE, "%s: '%s' is not an integer (see --help)", opt, s);
    if (v < lo || v > hi)
        die(LBFLOW_EXIT_USAGE, "%s: %ld out of range (%ld..%ld)", opt, v, lo, hi);
    return v;
}

static double parse_double(const char *opt, const char *s)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v))
        die(LBFLOW_EXIT_USAGE, "%s: '%s' is not a finite number (see --help)", opt, s);
    return v;
}

static void parse_args(int argc, char **argv, options_t *o)
{
    int i;

    o->geometry = NULL;
    o->steps = DEFAULT_STEPS;
    o->tau = DEFAULT_TAU;
    o->force = DEFAULT_FORCE;
    o->output_every = DEFAULT_OUTPUT_EVERY;
    o->steer_port = -1;
    o->steer_every = DEFAULT_STEER_EVERY;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(LBFLOW_EXIT_OK);
        }
        if (strcmp(arg, "--version") == 0) {
            printf("lbflow %s (precision %s, OpenMP %s)\n", LBFLOW_VERSION, LBFLOW_PRECISION_NAME,
#ifdef _OPENMP
                   "on"
#else
                   "off"
#endif
            );
            exit(LBFLOW_EXIT_OK);
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            die(LBFLOW_EXIT_USAGE, "unexpected argument '%s' (see --help)", arg);

        /* --name VALUE or --name=VALUE */
        eq = strchr(arg, '=');
        if (eq) {
            size_t len = (size_t)(eq - arg);
            if (len >= sizeof(name))
                die(LBFLOW_EXIT_USAGE, "unknown option '%.40s' (see --help)", arg);
            memcpy(name, arg, len);
            name[len] = '\0';
            val = eq + 1;
        } else {
            if (strlen(arg) >= sizeof(name))
                die(LBFLOW_EXIT_USAGE, "unknown option '%.40s' (see --help)", arg);
            strcpy(name, arg);
        }

        if (strcmp(name, "--geometry") != 0 && strcmp(name, "--steps") != 0 && strcmp(name, "--tau") != 0 &&
            strcmp(name, "--force") != 0 && strcmp(name, "--output-every") != 0 &&
            strcmp(name, "--steer-port") != 0 && strcmp(name, "--steer-every") != 0)
            die(LBFLOW_EXIT_USAGE, "unknown option '%s' (see --help)", name);
        if (!val) {
            if (i + 1 >= argc)
                die(LBFLOW_EXIT_USAGE, "option %s needs a value (see --help)", name);
            val = argv[++i];
        }

        if (strcmp(name, "--geometry") == 0) {
            if (*val == '\0')
                die(LBFLOW_EXIT_USAGE, "--geometry: empty file name");
            o->geometry = val;
        } else if (strcmp(name, "--steps") == 0) {
            o->steps = parse_long(name, val, 0, MAX_STEPS);
        } else if (strcmp(name, "--tau") == 0) {
            o->tau = parse_double(name, val);
            if (!(o->tau > 0.5))
                die(LBFLOW_EXIT_USAGE, "--tau: must be greater than 0.5 (got %s)", val);
        } else if (strcmp(name, "--force") == 0) {
            o->force = parse_double(name, val);
        } else if (strcmp(name, "--steer-port") == 0) {
            o->steer_port = parse_long(name, val, 0, MAX_PORT);
        } else if (strcmp(name, "--steer-every") == 0) {
            o->steer_every = parse_long(name, val, 1, MAX_STEPS);
        } else {
            o->output_every = parse_long(name, val, 0, MAX_STEPS);
        }
    }
    if (!o->geometry)
        die(LBFLOW_EXIT_USAGE, "missing required option --geometry FILE (see --help)");
}

/* What a steering client's "status" reads: the flow rate through the middle column now. */
typedef struct {
    lattice_t *lat;
    const geometry_t *geom;
    double *rho, *ux, *uy;
} flow_ctx_t;

static double flow_now(void *ctx)
{
    flow_ctx_t *c = ctx;
    diagnostics_t d;
    lattice_macroscopic(c->lat, c->rho, c->ux, c->uy);
    diagnostics_compute(c->geom, c->rho, c->ux, c->uy, &d);
    return d.flow_rate_mid;
}

static double now_seconds(void)
{
#if defined(_OPENMP)
    return omp_get_wtime();
#elif defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

int main(int argc, char **argv)
{
    options_t opt;
    geometry_t geom;
    lattice_t lat;
    run_summary_t sum;
    char err[512];
    double *rho, *ux, *uy, *ux_prev, *uy_prev;
    double t0, t1;
    long step, n, nactive, steps_done;
    int have_prev = 0, stop = 0;
    steer_t *steer = NULL;
    flow_ctx_t flow_ctx;
    double force;

    parse_args(argc, argv, &opt);

    if (geometry_read(opt.geometry, &geom, err, sizeof(err)) != 0)
        die(LBFLOW_EXIT_USAGE, "%s", err);
    if (lattice_init(&lat, &geom, opt.tau, opt.force) != 0)
        die(LBFLOW_EXIT_RUNTIME, "out of memory setting up a %dx%d lattice", geom.nx, geom.ny);

    n = lat.n;
    nactive = lat.nactive;
    rho = malloc((size_t)n * sizeof(double));
    ux = malloc((size_t)n * sizeof(double));
    uy = malloc((size_t)n * sizeof(double));
    ux_prev = calloc((size_t)n, sizeof(double));
    uy_prev = calloc((size_t)n, sizeof(double));
    if (!rho || !ux || !uy || !ux_prev || !uy_prev)
        die(LBFLOW_EXIT_RUNTIME, "out of memory allocating output fields");

    memset(&sum, 0, sizeof(sum));
    sum.geom = &geom;
    sum.geometry_file = opt.geometry;
    sum.boundary = lat.nopen > 0 ? "inlet-outlet" : "periodic";
    sum.steps = opt.steps;
    sum.tau = opt.tau;
    sum.viscosity = (opt.tau - 0.5) / 3.0;
    sum.force = opt.force;
#ifdef _OPENMP
    sum.openmp_threads = omp_get_max_threads();
#endif
    sum.initial_mass = (double)nactive; /* rho = 1 everywhere at t = 0 */

    printf("lbflow %s: geometry %s (%dx%d, %ld fluid cells, %s), steps %ld, tau %g, force %g, precision %s, "
           "threads %d\n",
           LBFLOW_VERSION, geom.name, geom.nx, geom.ny, nactive, sum.boundary, opt.steps, opt.tau, opt.force,
           LBFLOW_PRECISION_NAME, sum.openmp_threads > 0 ? sum.openmp_threads : 1);
    if (opt.steer_port >= 0) {
        steer = steer_open((int)opt.steer_port, err, sizeof(err));
        if (!steer)
            die(LBFLOW_EXIT_RUNTIME, "%s", err);
        sum.steer = steer;
        printf("lbflow: steering on %s:%d (%s), polled every %ld steps\n", steer_host(steer), steer_port(steer),
               STEER_FILE, opt.steer_every);
    }
    fflush(stdout);
    force = opt.force;
    flow_ctx.lat = &lat;
    flow_ctx.geom = &geom;
    flow_ctx.rho = rho;
    flow_ctx.ux = ux;
    flow_ctx.uy = uy;

    t0 = now_seconds();
    for (step = 1; step <= opt.steps && !stop; step++) {
        const int progress = opt.output_every > 0 && step % opt.output_every == 0;
        lattice_step(&lat);
        if (progress || step % STABILITY_CHECK_EVERY == 0) {
            diagnostics_t d;
            lattice_macroscopic(&lat, rho, ux, uy);
            diagnostics_compute(&geom, rho, ux, uy, &d);
            if (!(d.max_velocity < UNSTABLE_VELOCITY))
                die(LBFLOW_EXIT_UNSTABLE,
                    "simulation unstable at step %ld (max |u| = %g); reduce --force or increase --tau", step,
                    d.max_velocity);
            if (progress) {
                printf("step %8ld/%ld  max|u| %.6e  flow_rate_mid %.6e  mass %.9e", step, opt.steps,
                       d.max_velocity, d.flow_rate_mid, d.total_mass);
                if (have_prev) {
                    sum.residual = diagnostics_residual(&geom, ux, uy, ux_prev, uy_prev);
                    sum.has_residual = 1;
                    printf("  residual %.3e", sum.residual);
                }
                printf("\n");
                fflush(stdout);
                memcpy(ux_prev, ux, (size_t)n * sizeof(double));
                memcpy(uy_prev, uy, (size_t)n * sizeof(double));
                have_prev = 1;
            }
        }
        if (steer && step % opt.steer_every == 0 && steer_poll(steer, step, &force, &stop, flow_now, &flow_ctx))
            lat.force = (real_t)force;
    }
    steps_done = step - 1;
    t1 = now_seconds();

    lattice_macroscopic(&lat, rho, ux, uy);
    diagnostics_compute(&geom, rho, ux, uy, &sum.diag);
    if (!(sum.diag.max_velocity < UNSTABLE_VELOCITY))
        die(LBFLOW_EXIT_UNSTABLE, "simulation unstable (max |u| = %g); reduce --force or increase --tau",
            sum.diag.max_velocity);
    if (have_prev && steps_done % opt.output_every != 0) {
        sum.residual = diagnostics_residual(&geom, ux, uy, ux_prev, uy_prev);
        sum.has_residual = 1;
    }
    sum.wall_time_s = t1 - t0;
    sum.steps = steps_done;
    sum.mlups = sum.wall_time_s > 0.0 ? (double)nactive * (double)steps_done / sum.wall_time_s / 1e6 : 0.0;

    if (output_write_velocity(OUTPUT_VELOCITY_FILE, &geom, rho, ux, uy) != 0)
        die(LBFLOW_EXIT_RUNTIME, "cannot write %s: %s", OUTPUT_VELOCITY_FILE, strerror(errno));
    if (output_write_summary(OUTPUT_SUMMARY_FILE, &sum) != 0)
        die(LBFLOW_EXIT_RUNTIME, "cannot write %s: %s", OUTPUT_SUMMARY_FILE, strerror(errno));

    printf("lbflow: done: geometry %s, %ld steps, precision %s, max_velocity %.6e, flow_rate_mid %.6e, "
           "total_mass %.9e, wall time %.3f s (%.1f MLUPS)\n",
           geom.name, steps_done, LBFLOW_PRECISION_NAME, sum.diag.max_velocity, sum.diag.flow_rate_mid,
           sum.diag.total_mass, sum.wall_time_s, sum.mlups);

    steer_close(steer);
    free(rho);
    free(ux);
    free(uy);
    free(ux_prev);
    free(uy_prev);
    lattice_free(&lat);
    geometry_free(&geom);
    return LBFLOW_EXIT_OK;
}
