#include "miniheat/grid.hpp"

namespace miniheat {

double Grid::total() const
{
    double sum = 0.0;
    for (double x : v_) sum += x;
    return sum;
}

double Grid::max() const
{
    double m = v_.empty() ? 0.0 : v_[0];
    for (double x : v_)
        if (x > m) m = x;
    return m;
}

}  // namespace miniheat
