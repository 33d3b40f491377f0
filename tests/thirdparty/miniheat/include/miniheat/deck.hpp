#pragma once
#include <string>

namespace miniheat {

/// Everything an input deck sets.
struct Deck {
    std::string name = "case";
    int nx = 32;
    int ny = 32;
    int steps = 100;
    int output_every = 0;       ///< write a field every N steps (0: only the last)
    double alpha = 0.2;         ///< diffusion number, stable below 0.25
    double hot_value = 100.0;   ///< temperature of the heated edge
    std::string boundary = "top";   ///< top | left | corner
};

/// Read a deck of "key = value" lines ('#' starts a comment); throws on errors.
Deck read_deck(const std::string &path);

}  // namespace miniheat
