#include "rumor/net/secret.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::net {

std::string new_secret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw Error("cannot make a run secret: OpenSSL RAND_bytes has no randomness to give");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

void write_private_file(const std::string& path, const std::string& contents,
                        const std::string& what) {
  // Created 0600 before anything is written; an older file is replaced, not reused (its
  // mode may be wider).
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot write " + what + " to '" + path + "': " + std::strerror(errno));
  const bool ok =
      ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      ::fchmod(fd, 0600) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error("cannot write " + what + " to '" + path + "': " + std::strerror(err));
}

void write_secret_file(const std::string& path, const std::string& secret) {
  write_private_file(path, secret + "\n", "the run secret");
}

std::string read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw ConfigError("network.secret_file '" + path +
                      "' cannot be read; make one with `rumor secret new -o " + path +
                      "` and give every host the same file");
  std::string secret;
  std::getline(in, secret);
  if (secret.empty())
    throw ConfigError("network.secret_file '" + path +
                      "' is empty; its first line must be the secret (`rumor secret new -o " +
                      path + "`)");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    log::warn("network.secret_file '", path,
              "' may be read by other users of this machine; chmod 600 it");
  return secret;
}

}  // namespace rumor::net
