// Catch2's main, in a translation unit of its own: it is the slow one to compile, and the
// test files rebuild without it.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
