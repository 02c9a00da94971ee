// rumor secret new|ca|certs: the run secret, and the CA and node certificates of network.tls.
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "rumor/net/secret.hpp"
#include "rumor/net/tls_certs.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::cli {
namespace {

void add_tls_commands(CLI::App& secret) {
  struct Args {
    std::string out, ca, topology;
    int days = 0;
  };
  auto a = std::make_shared<Args>();
  auto* ca = secret.add_subcommand(
      "ca",
      "make a self-signed CA for network.tls: DIR/ca.pem (give every host) and DIR/ca.key "
      "(mode 0600; keep it where certificates are made). Refuses to replace an existing "
      "ca.key");
  ca->add_option("-o,--output", a->out, "directory to write (made if missing)")->required();
  ca->add_option("--days", a->days, "validity in days (default 3650)")->check(CLI::Range(1, 36500));
  ca->callback([a] {
    net::make_tls_ca(a->out, a->days > 0 ? a->days : 3650);
    std::cerr << "wrote " << a->out << "/ca.pem and " << a->out
              << "/ca.key (mode 0600); next: rumor secret certs --topology FILE --ca " << a->out
              << " -o DIR\n";
  });
  auto* certs = secret.add_subcommand(
      "certs",
      "make a certificate and key per node of a topology (DIR/node-<id>.pem, node-<id>.key, "
      "mode 0600; subject CN node-<id>), signed by the CA of `rumor secret ca`");
  certs->add_option("--topology", a->topology, "topology file whose nodes get certificates")
      ->required();
  certs->add_option("--ca", a->ca, "directory with ca.pem and ca.key")->required();
  certs->add_option("-o,--output", a->out, "directory to write (made if missing)")->required();
  certs->add_option("--days", a->days, "validity in days (default 825)")
      ->check(CLI::Range(1, 36500));
  certs->callback([a] {
    const Topology t = load_topology(a->topology);
    std::vector<int> ids;
    for (const auto& n : t.nodes()) ids.push_back(n.id);
    net::make_tls_node_certs(a->ca, ids, a->out, a->days > 0 ? a->days : 825);
    std::cerr
        << "wrote " << ids.size() << " node certificates to " << a->out
        << "; give node <id> its node-<id>.pem and .key and run with\n  --set network.tls=true"
        << " --set 'network.tls_cert=" << a->out << "/node-{id}.pem'"
        << " --set 'network.tls_key=" << a->out << "/node-{id}.key'"
        << " --set network.tls_ca=" << a->ca << "/ca.pem\n";
  });
}

}  // namespace

void add_secret_commands(CLI::App& app) {
  auto* secret = app.add_subcommand(
      "secret",
      "make the shared secret peers authenticate each other with, or certificates for TLS\n\n"
      "`rumor launch` makes a fresh secret per run by itself (RUNDIR/secret). Peers started\n"
      "on their own (`rumor node`, mpirun, srun) need one file, the same on every host,\n"
      "passed as network.secret_file. With network.tls: true the links run over TLS 1.3,\n"
      "authenticated by a key derived from that secret, or by certificates: a CA of your\n"
      "own (`secret ca`) and one certificate per node (`secret certs`).\n\n"
      "Examples:\n  rumor secret new -o run.secret\n  rumor secret ca -o tls\n"
      "  rumor secret certs --topology topologies/ring8.json --ca tls -o tls");
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
  add_tls_commands(*secret);
}

}  // namespace rumor::cli
