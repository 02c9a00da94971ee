#pragma once
// The run secret: a random key the peers of one run share, so that a connection proves in
// the handshake (HMAC challenge-response both ways) that it comes from one of them.
//
// `rumor launch` makes a fresh one per run (RUNDIR/secret); `rumor secret new -o FILE` makes
// one for peers started on several hosts. The file's first line is the secret; it is
// written with mode 0600 and never logged.
#include <string>

namespace rumor::net {

// 32 random bytes (OpenSSL RAND_bytes) as 64 hex digits. Throws Error when the system has
// no randomness to give.
std::string new_secret();
// Writes `secret` and a newline to `path`, readable by its owner only (0600; an existing
// file is replaced). Throws Error naming the path.
void write_secret_file(const std::string& path, const std::string& secret);
// Writes `contents` to `path` with mode 0600 (an existing file is replaced). Throws Error
// naming `what` and the path.
void write_private_file(const std::string& path, const std::string& contents,
                        const std::string& what);
// The first line of `path`. Throws ConfigError naming the file when it cannot be read or
// the line is empty; warns once when group or others may read it.
std::string read_secret_file(const std::string& path);

}  // namespace rumor::net
