#pragma once
// Certificates for network.tls: a self-signed CA of one's own and per-node certificates
// signed by it (EC P-256, SHA-256, made with OpenSSL). A node certificate's subject is
// CN=node-<id>, the id its holder may claim in the handshake; it serves both as client and
// as server. Private keys are written with mode 0600.
#include <string>
#include <vector>

namespace rumor::net {

// DIR/ca.pem and DIR/ca.key, valid for `days`. Refuses (Error) to replace an existing
// DIR/ca.key: certificates it signed would no longer match a new CA.
void make_tls_ca(const std::string& dir, int days = 3650);

// OUT/node-<id>.pem and OUT/node-<id>.key for each id, signed by CA_DIR/ca.pem and ca.key,
// valid for `days`. Throws Error naming the file that cannot be read or written.
void make_tls_node_certs(const std::string& ca_dir, const std::vector<int>& ids,
                         const std::string& out_dir, int days = 825);

}  // namespace rumor::net
