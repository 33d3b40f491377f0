#pragma once
#include <cstddef>
#include <vector>

namespace miniheat {

/// A row-major nx x ny field of doubles.
class Grid {
public:
    Grid(int nx, int ny) : nx_(nx), ny_(ny), v_(static_cast<std::size_t>(nx) * ny, 0.0) {}
    int nx() const { return nx_; }
    int ny() const { return ny_; }
    double &at(int i, int j) { return v_[static_cast<std::size_t>(j) * nx_ + i]; }
    double at(int i, int j) const { return v_[static_cast<std::size_t>(j) * nx_ + i]; }
    double total() const;
    double max() const;
    void swap(Grid &other) { v_.swap(other.v_); }

private:
    int nx_, ny_;
    std::vector<double> v_;
};

}  // namespace miniheat
