#include "miniheat/io.hpp"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "miniheat/version.hpp"

namespace miniheat {

namespace {

std::FILE *open_out(const std::string &path)
{
    std::FILE *f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path);
    return f;
}

void close_out(std::FILE *f, const std::string &path)
{
    if (std::fclose(f) != 0) throw std::runtime_error("error writing " + path);
}

}  // namespace

void make_dirs(const std::string &path)
{
    std::filesystem::create_directories(path);
}

void write_field(const std::string &dir, int step, const Grid &g)
{
    char name[64];
    std::snprintf(name, sizeof name, "/fields/field_%06d.csv", step);
    make_dirs(dir + "/fields");
    const std::string path = dir + name;
    std::FILE *f = open_out(path);
    for (int j = 0; j < g.ny(); ++j) {
        for (int i = 0; i < g.nx(); ++i)
            std::fprintf(f, i ? ",%.*f" : "%.*f", MINIHEAT_FIELD_PRECISION, g.at(i, j));
        std::fputc('\n', f);
    }
    close_out(f, path);
}

void write_history(const std::string &dir, const std::vector<std::pair<int, double>> &history)
{
    const std::string path = dir + "/history.dat";
    std::FILE *f = open_out(path);
    std::fprintf(f, "# step total_heat\n");
    for (const auto &h : history) std::fprintf(f, "%d %.17g\n", h.first, h.second);
    close_out(f, path);
}

void write_summary(const std::string &dir, const Deck &deck, int steps, const Grid &g)
{
    const std::string path = dir + "/summary.txt";
    std::FILE *f = open_out(path);
    std::fprintf(f, "miniheat %s\n", MINIHEAT_VERSION);
    std::fprintf(f, "name = %s\n", deck.name.c_str());
    std::fprintf(f, "nx = %d\nny = %d\nsteps = %d\n", g.nx(), g.ny(), steps);
    std::fprintf(f, "total_heat = %.17g\n", g.total());
    std::fprintf(f, "max = %.17g\n", g.max());
    close_out(f, path);
}

}  // namespace miniheat
