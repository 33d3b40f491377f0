#include "miniheat/solver.hpp"

#ifdef MINIHEAT_HAVE_OPENMP
#include <omp.h>
#endif

namespace miniheat {

Solver::Solver(const Deck &deck) : deck_(deck), u_(deck.nx, deck.ny), next_(deck.nx, deck.ny)
{
    apply_boundary(u_);
    apply_boundary(next_);
}

void Solver::apply_boundary(Grid &g) const
{
    const int nx = g.nx(), ny = g.ny();
    for (int i = 0; i < nx; ++i) {
        g.at(i, 0) = 0.0;
        g.at(i, ny - 1) = 0.0;
    }
    for (int j = 0; j < ny; ++j) {
        g.at(0, j) = 0.0;
        g.at(nx - 1, j) = 0.0;
    }
    const double hot = deck_.hot_value;
    if (deck_.boundary == "top") {
        for (int i = 0; i < nx; ++i) g.at(i, 0) = hot;
    } else if (deck_.boundary == "left") {
        for (int j = 0; j < ny; ++j) g.at(0, j) = hot;
    } else {  // corner
        for (int i = 0; i < nx / 2; ++i) g.at(i, 0) = hot;
        for (int j = 0; j < ny / 2; ++j) g.at(0, j) = hot;
    }
}

void Solver::step()
{
    const int nx = u_.nx(), ny = u_.ny();
    const double a = deck_.alpha;
#ifdef MINIHEAT_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int j = 1; j < ny - 1; ++j) {
        for (int i = 1; i < nx - 1; ++i) {
            const double c = u_.at(i, j);
            next_.at(i, j) = c + a * (u_.at(i - 1, j) + u_.at(i + 1, j) + u_.at(i, j - 1) + u_.at(i, j + 1) - 4.0 * c);
        }
    }
    apply_boundary(next_);
    u_.swap(next_);
}

int Solver::threads() const
{
#ifdef MINIHEAT_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

}  // namespace miniheat
