#include "miniheat/deck.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace miniheat {

namespace {

std::string trim(const std::string &s)
{
    const auto a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    const auto b = s.find_last_not_of(" \t\r");
    return s.substr(a, b - a + 1);
}

int to_int(const std::string &where, const std::string &v)
{
    char *end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end) throw std::runtime_error(where + ": not an integer: " + v);
    return static_cast<int>(n);
}

double to_double(const std::string &where, const std::string &v)
{
    char *end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end) throw std::runtime_error(where + ": not a number: " + v);
    return x;
}

}  // namespace

Deck read_deck(const std::string &path)
{
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open deck " + path);
    Deck d;
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        const auto hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        line = trim(line);
        if (line.empty()) continue;
        const auto eq = line.find('=');
        const std::string where = path + ":" + std::to_string(lineno);
        if (eq == std::string::npos) throw std::runtime_error(where + ": expected key = value");
        const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        if (key == "name") d.name = value;
        else if (key == "nx") d.nx = to_int(where, value);
        else if (key == "ny") d.ny = to_int(where, value);
        else if (key == "steps") d.steps = to_int(where, value);
        else if (key == "output_every") d.output_every = to_int(where, value);
        else if (key == "alpha") d.alpha = to_double(where, value);
        else if (key == "hot_value") d.hot_value = to_double(where, value);
        else if (key == "boundary") d.boundary = value;
        else throw std::runtime_error(where + ": unknown key '" + key + "'");
    }
    if (d.nx < 3 || d.ny < 3) throw std::runtime_error(path + ": nx and ny must be at least 3");
    if (!(d.alpha > 0.0 && d.alpha <= 0.25)) throw std::runtime_error(path + ": alpha must be in (0, 0.25]");
    if (d.boundary != "top" && d.boundary != "left" && d.boundary != "corner")
        throw std::runtime_error(path + ": boundary must be top, left or corner");
    return d;
}

}  // namespace miniheat
