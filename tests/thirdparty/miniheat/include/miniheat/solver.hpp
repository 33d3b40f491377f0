#pragma once
#include <functional>

#include "miniheat/deck.hpp"
#include "miniheat/grid.hpp"

namespace miniheat {

/// Explicit (Jacobi) diffusion with Dirichlet edges.
class Solver {
public:
    explicit Solver(const Deck &deck);
    void apply_boundary(Grid &g) const;
    void step();
    const Grid &field() const { return u_; }
    int threads() const;

private:
    Deck deck_;
    Grid u_, next_;
};

}  // namespace miniheat
