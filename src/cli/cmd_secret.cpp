// rumor secret new -o FILE: a run secret for peers started on several hosts.
#include <iostream>

#include "commands.hpp"
#include "rumor/net/secret.hpp"

namespace rumor::cli {

void add_secret_commands(CLI::App& app) {
  auto* secret = app.add_subcommand(
      "secret",
      "make the shared secret peers authenticate each other with\n\n"
      "`rumor launch` makes a fresh one per run by itself (RUNDIR/secret). Peers started\n"
      "on their own (`rumor node`, mpirun, srun) need one file, the same on every host,\n"
      "passed as network.secret_file.\n\n"
      "Example:\n  rumor secret new -o run.secret");
  secret->require_subcommand(1);
  static std::string out;
  auto* make = secret->add_subcommand(
      "new", "write a fresh random secret (32 bytes from OpenSSL, hex) to a file, mode 0600");
  make->add_option("-o,--output", out, "file to write (replaced if it exists)")->required();
  make->callback([] {
    net::write_secret_file(out, net::new_secret());
    std::cerr << "wrote a new secret to " << out
              << " (mode 0600); give every host this file and set network.secret_file to it\n";
  });
}

}  // namespace rumor::cli
