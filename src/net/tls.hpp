#pragma once
// TLS 1.3 on the links of a TcpTransport (internal): the context a transport's connections
// share, and the check of a peer once its TLS handshake is done.
//
// Both ways authenticate both sides:
//  - certificates (options.tls_cert, tls_key, tls_ca): each side shows a certificate signed
//    by the CA whose subject CN is node-<id>; that id must be the one the peer then claims
//    in the rumor handshake (Handshake::set_certified_peer).
//  - without certificates, an external pre-shared key derived from the run secret (HMAC
//    under a label): only peers holding the run secret finish the TLS handshake.
#include <memory>
#include <string>

#include "asio.hpp"
// After asio.hpp (see there).
#include <boost/asio/ssl.hpp>

#include "rumor/net/transport.hpp"

namespace rumor::net {

using TlsStream = asio::ssl::stream<tcp::socket&>;

class TlsContext {
 public:
  // Throws ConfigError naming the option or file that is wrong and what to do.
  TlsContext(const TransportOptions& options, int self);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  asio::ssl::context& context() { return ctx_; }
  bool uses_psk() const { return !psk_.empty(); }
  const std::string& psk() const { return psk_; }
  // After a completed TLS handshake: empty when the session is acceptable, else why not.
  // `peer` is the node id the peer's certificate names (-1 with a pre-shared key).
  std::string check_peer(SSL* ssl, int& peer) const;

 private:
  void use_psk(const TransportOptions& options);
  void use_certificates(const TransportOptions& options, int self);

  asio::ssl::context ctx_;
  std::string psk_;  // 32 bytes; empty with certificates
};

// The node id in a certificate's subject (CN node-<id>), or -1 when it names none.
int certificate_node_id(X509* cert);

}  // namespace rumor::net
