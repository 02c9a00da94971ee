#include "rumor/net/tls_certs.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "rumor/common/error.hpp"
#include "rumor/net/secret.hpp"

namespace rumor::net {
namespace {

namespace fs = std::filesystem;

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

[[noreturn]] void fail(const std::string& what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "no OpenSSL detail";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  throw Error(what + " (" + buf + ")");
}

Key new_key() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) fail("cannot make an EC P-256 key");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  const bool ok = ext && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  if (!ok) fail(std::string("cannot add the certificate extension ") + value);
}

// A certificate for `key` named CN=`cn`, signed by `issuer_key` (and named by `issuer`'s
// subject; itself when null: a self-signed CA).
Cert make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, int days) {
  Cert c(X509_new());
  std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>> serial(BN_new());
  if (!c || !serial || X509_set_version(c.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c.get())) ||
      !X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(c.get()), static_cast<long>(days) * 86400) ||
      X509_set_pubkey(c.get(), key) != 1 ||
      X509_NAME_add_entry_by_txt(X509_get_subject_name(c.get()), "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1)
    fail("cannot make the certificate of " + cn);
  X509* signer = issuer ? issuer : c.get();
  if (X509_set_issuer_name(c.get(), X509_get_subject_name(signer)) != 1)
    fail("cannot name the issuer of " + cn);
  add_ext(c.get(), signer, NID_subject_key_identifier, "hash");
  add_ext(c.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (!issuer) {
    add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_ext(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_ext(c.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (X509_sign(c.get(), issuer_key, EVP_sha256()) <= 0)
    fail("cannot sign the certificate of " + cn);
  return c;
}

template <typename Write>
std::string pem(Write write, const std::string& what) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) fail("cannot encode " + what);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void write_pair(const fs::path& dir, const std::string& stem, X509* cert, EVP_PKEY* key) {
  const std::string cert_pem = pem([&](BIO* b) { return PEM_write_bio_X509(b, cert); }, stem);
  const std::string key_pem = pem(
      [&](BIO* b) {
        return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
      },
      stem + "'s key");
  write_private_file((dir / (stem + ".key")).string(), key_pem, "a private key");
  const fs::path cert_path = dir / (stem + ".pem");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(cert_path.c_str(), "wb"), &std::fclose);
  if (!f || std::fwrite(cert_pem.data(), 1, cert_pem.size(), f.get()) != cert_pem.size())
    throw Error("cannot write the certificate '" + cert_path.string() + "'");
}

template <typename T, typename Read>
T read_pem(const fs::path& path, Read read, const char* what) {
  Bio bio(BIO_new_file(path.c_str(), "r"));
  T out(bio ? read(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!out)
    fail("cannot read the " + std::string(what) + " '" + path.string() +
         "' (make the CA with `rumor secret ca -o DIR`)");
  return out;
}

void make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot make the directory '" + dir.string() + "': " + ec.message());
}

}  // namespace

void make_tls_ca(const std::string& dir, int days) {
  const fs::path d(dir);
  if (fs::exists(d / "ca.key"))
    throw Error("'" + (d / "ca.key").string() +
                "' exists; a new CA would not match the certificates the old one signed. "
                "Remove the directory's ca.key and ca.pem first, or pick another directory");
  make_dir(d);
  Key key = new_key();
  Cert cert = make_cert("rumor CA", key.get(), nullptr, key.get(), days);
  write_pair(d, "ca", cert.get(), key.get());
}

void make_tls_node_certs(const std::string& ca_dir, const std::vector<int>& ids,
                         const std::string& out_dir, int days) {
  const fs::path ca(ca_dir);
  Cert ca_cert = read_pem<Cert>(ca / "ca.pem", PEM_read_bio_X509, "CA certificate");
  Key ca_key = read_pem<Key>(ca / "ca.key", PEM_read_bio_PrivateKey, "CA key");
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1)
    fail("'" + (ca / "ca.key").string() + "' is not the key of '" + (ca / "ca.pem").string() + "'");
  make_dir(out_dir);
  for (int id : ids) {
    const std::string stem = "node-" + std::to_string(id);
    Key key = new_key();
    Cert cert = make_cert(stem, key.get(), ca_cert.get(), ca_key.get(), days);
    write_pair(out_dir, stem, cert.get(), key.get());
  }
}

}  // namespace rumor::net
