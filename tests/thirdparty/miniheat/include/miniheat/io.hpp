#pragma once
#include <string>
#include <vector>

#include "miniheat/deck.hpp"
#include "miniheat/grid.hpp"

namespace miniheat {

void make_dirs(const std::string &path);
void write_field(const std::string &dir, int step, const Grid &g);
void write_history(const std::string &dir, const std::vector<std::pair<int, double>> &history);
void write_summary(const std::string &dir, const Deck &deck, int steps, const Grid &g);

}  // namespace miniheat
