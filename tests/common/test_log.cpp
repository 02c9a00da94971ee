#include <doctest/doctest.h>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

TEST_SUITE("common") {
  TEST_CASE("log levels parse and unknown names are refused with the valid list") {
    CHECK(rumor::log::parse_level("debug") == rumor::log::Level::kDebug);
    CHECK(rumor::log::parse_level("off") == rumor::log::Level::kOff);
    try {
      rumor::log::parse_level("verbose");
      FAIL("expected ConfigError");
    } catch (const rumor::ConfigError& e) {
      CHECK(std::string(e.what()).find("verbose") != std::string::npos);
      CHECK(std::string(e.what()).find("debug, info, warn, error, off") != std::string::npos);
    }
  }
}
