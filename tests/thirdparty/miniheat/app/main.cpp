// miniheat: explicit 2-D heat diffusion driven by an input deck.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "miniheat/deck.hpp"
#include "miniheat/io.hpp"
#include "miniheat/solver.hpp"
#include "miniheat/version.hpp"

namespace {

void usage()
{
    std::fprintf(stderr, "usage: miniheat --deck FILE [--output DIR] [--steps N]\n");
}

}  // namespace

int main(int argc, char **argv)
{
    std::string deck_path, output = "output";
    int steps_override = -1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--deck" || a == "-i") && i + 1 < argc) deck_path = argv[++i];
        else if ((a == "--output" || a == "-o") && i + 1 < argc) output = argv[++i];
        else if (a == "--steps" && i + 1 < argc) steps_override = std::atoi(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (deck_path.empty()) {
        usage();
        return 2;
    }
    try {
        const miniheat::Deck deck = miniheat::read_deck(deck_path);
        const int steps = steps_override >= 0 ? steps_override : deck.steps;
        miniheat::Solver solver(deck);
        std::printf("miniheat %s: %s, %dx%d, %d steps, %d threads\n", MINIHEAT_VERSION, deck.name.c_str(),
                    deck.nx, deck.ny, steps, solver.threads());
        miniheat::make_dirs(output);
        std::vector<std::pair<int, double>> history;
        for (int s = 1; s <= steps; ++s) {
            solver.step();
            if ((deck.output_every > 0 && s % deck.output_every == 0) || s == steps) {
                miniheat::write_field(output, s, solver.field());
                history.emplace_back(s, solver.field().total());
            }
        }
        miniheat::write_history(output, history);
        miniheat::write_summary(output, deck, steps, solver.field());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "miniheat: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
