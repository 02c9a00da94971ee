#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>

#include "rumor/common/error.hpp"

namespace rumor::net {
namespace {

// What a peer offers as its PSK identity; the key behind it is what proves anything.
constexpr char kPskIdentity[] = "rumor-run-psk";
// A PSK is a "resumed" session to OpenSSL: its context and the connection's must match.
constexpr unsigned char kSessionContext[] = "rumor";
// TLS_AES_128_GCM_SHA256: a PSK is bound to one hash, so both sides name the same suite.
constexpr unsigned char kPskCipher[] = {0x13, 0x01};

// Where a context keeps its TlsContext (Boost.Asio's context owns the "app data" slot).
int owner_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

const TlsContext& owner_of(SSL* ssl) {
  return *static_cast<const TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), owner_index()));
}

SSL_SESSION* psk_session(SSL* ssl) {
  const std::string& key = owner_of(ssl).psk();
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kPskCipher);
  SSL_SESSION* s = cipher ? SSL_SESSION_new() : nullptr;
  if (s &&
      SSL_SESSION_set1_master_key(s, reinterpret_cast<const unsigned char*>(key.data()),
                                  key.size()) == 1 &&
      SSL_SESSION_set_cipher(s, cipher) == 1 &&
      SSL_SESSION_set1_id_context(s, kSessionContext, sizeof kSessionContext - 1) == 1 &&
      SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) == 1)
    return s;
  SSL_SESSION_free(s);
  return nullptr;
}

// Dialer: offers the run's PSK (unless OpenSSL asks for another hash: then none).
int use_psk_session(SSL* ssl, const EVP_MD* md, const unsigned char** id, std::size_t* idlen,
                    SSL_SESSION** sess) {
  *id = nullptr;
  *idlen = 0;
  *sess = nullptr;
  SSL_SESSION* s = psk_session(ssl);
  if (!s) return 0;
  if (md && SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s)) != md) {
    SSL_SESSION_free(s);
    return 1;
  }
  *sess = s;
  *id = reinterpret_cast<const unsigned char*>(kPskIdentity);
  *idlen = sizeof kPskIdentity - 1;
  return 1;
}

// Acceptor: the run's PSK for its identity; any other identity finds none (and, with no
// certificate to fall back on, the handshake fails).
int find_psk_session(SSL* ssl, const unsigned char* id, std::size_t idlen, SSL_SESSION** sess) {
  *sess = nullptr;
  if (idlen != sizeof kPskIdentity - 1 || std::memcmp(id, kPskIdentity, idlen) != 0) return 1;
  *sess = psk_session(ssl);
  return *sess ? 1 : 0;
}

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

int certificate_node_id(X509* cert) {
  if (!cert) return -1;
  char cn[64] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                          static_cast<int>(sizeof cn));
  if (n <= 5 || std::strncmp(cn, "node-", 5) != 0 || n > 5 + 9) return -1;
  int id = 0;
  for (int i = 5; i < n; ++i) {
    if (cn[i] < '0' || cn[i] > '9') return -1;
    id = id * 10 + (cn[i] - '0');
  }
  return (n > 6 && cn[5] == '0') ? -1 : id;  // one spelling per id: no leading zeros
}

TlsContext::TlsContext(const TransportOptions& options, int self) : ctx_(asio::ssl::context::tls) {
  SSL_CTX* c = ctx_.native_handle();
  if (owner_index() < 0 || SSL_CTX_set_ex_data(c, owner_index(), this) != 1)
    throw Error("cannot set up TLS: " + openssl_error());
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  // Every connection authenticates afresh: no session cache, no resumption tickets.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  // A PSK is a "resumed" session to OpenSSL, which then wants a session id context.
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
  if (options.tls_cert.empty()) {
    use_psk(options);
  } else {
    use_certificates(options, self);
  }
}

void TlsContext::use_psk(const TransportOptions& options) {
  if (options.secret.empty())
    throw ConfigError(
        "network.tls without certificates authenticates with a key derived from the run "
        "secret, and this node has none: set network.secret_file (rumor secret new -o FILE), "
        "or network.tls_cert, tls_key and tls_ca (rumor secret ca / rumor secret certs)");
  static constexpr char kLabel[] = "rumor tls1.3 external psk";
  const std::string data = std::string(kLabel, sizeof kLabel) + options.run_id;
  unsigned char key[32];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), options.secret.data(), static_cast<int>(options.secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), key, &len) ||
      len != sizeof key)
    throw Error("cannot derive the TLS pre-shared key: " + openssl_error());
  psk_.assign(reinterpret_cast<const char*>(key), len);
  SSL_CTX* c = ctx_.native_handle();
  // Only the PSK's suite: OpenSSL drops a PSK whose hash is not the negotiated suite's (the
  // default prefers TLS_AES_256_GCM_SHA384) and would fall back to certificates.
  if (SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256") != 1)
    throw Error("cannot set up TLS: " + openssl_error());
  SSL_CTX_set_psk_use_session_callback(c, use_psk_session);
  SSL_CTX_set_psk_find_session_callback(c, find_psk_session);
  // A server that ignores the PSK and shows some certificate is not trusted (no CA).
  ctx_.set_verify_mode(asio::ssl::verify_peer);
}

void TlsContext::use_certificates(const TransportOptions& options, int self) {
  auto load = [&](const char* key, const std::string& path, auto&& fn) {
    if (path.empty())
      throw ConfigError(std::string("network.tls_cert needs network.") + key +
                        " as well (rumor secret ca / rumor secret certs make them)");
    try {
      fn(path);
    } catch (const boost::system::system_error& e) {
      throw ConfigError(std::string("network.") + key + " '" + path + "' cannot be used: " +
                        e.code().message() + " (a PEM file; rumor secret certs makes them)");
    }
  };
  load("tls_cert", options.tls_cert,
       [&](const std::string& p) { ctx_.use_certificate_chain_file(p); });
  load("tls_key", options.tls_key,
       [&](const std::string& p) { ctx_.use_private_key_file(p, asio::ssl::context::pem); });
  load("tls_ca", options.tls_ca, [&](const std::string& p) { ctx_.load_verify_file(p); });
  SSL_CTX* c = ctx_.native_handle();
  if (SSL_CTX_check_private_key(c) != 1)
    throw ConfigError("network.tls_key '" + options.tls_key +
                      "' is not the key of network.tls_cert '" + options.tls_cert + "'");
  const int id = certificate_node_id(SSL_CTX_get0_certificate(c));
  if (id != self)
    throw ConfigError("network.tls_cert '" + options.tls_cert + "' is " +
                      (id < 0 ? std::string("not a node certificate (subject CN node-<id>)")
                              : "node " + std::to_string(id) + "'s certificate") +
                      ", and this is node " + std::to_string(self) +
                      " (write {id} in the path for per-node files)");
  ctx_.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
}

std::string TlsContext::check_peer(SSL* ssl, int& peer) const {
  peer = -1;
  if (uses_psk())
    return SSL_session_reused(ssl) == 1 ? std::string()
                                        : "the peer did not authenticate with the run's key";
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return "the peer showed no certificate";
  const long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK)
    return std::string("the peer's certificate does not verify: ") +
           X509_verify_cert_error_string(verified);
  peer = certificate_node_id(cert);
  if (peer < 0) return "the peer's certificate names no node (subject CN node-<id>)";
  return {};
}

}  // namespace rumor::net
