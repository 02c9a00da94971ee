#pragma once
// Typed errors for configuration and start-up problems. Each message should say what
// was wrong, where (file, line, node, peer) and what to do about it.
#include <stdexcept>
#include <string>

namespace rumor {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigError : public Error {
 public:
  using Error::Error;
};

class TopologyError : public Error {
 public:
  using Error::Error;
};

class ProtocolError : public Error {
 public:
  using Error::Error;
};

class CodecError : public Error {
 public:
  using Error::Error;
};

class DataError : public Error {
 public:
  using Error::Error;
};

}  // namespace rumor
