#pragma once
// Test certificates made at run time with the OpenSSL 3 API, so no key material is committed and
// nothing expires: a self-signed CA (P-256) and leaf certificates it signs for a given DNS name.
// Every OpenSSL object is owned by a unique_ptr (LeakSanitizer runs the unit suites).

#include <memory>
#include <stdexcept>
#include <string>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace aoun::test {

namespace detail {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ext_free {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, ext_free>;

inline void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

inline pkey_ptr new_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  require(key != nullptr, "EVP_EC_gen");
  return key;
}

// Adds one v3 extension, in `openssl x509 -extfile` syntax. `issuer` is the signing certificate
// (the certificate itself when self-signed), needed for the key identifiers.
inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  require(ext != nullptr, "X509V3_EXT_conf_nid");
  require(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

// A certificate for `key`, named CN=`cn`, valid from an hour ago for a day; the caller adds the
// extensions and signs it.
inline x509_ptr new_cert(EVP_PKEY* key, const char* cn, long serial) {
  x509_ptr cert(X509_new());
  require(cert != nullptr, "X509_new");
  require(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  require(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1, "serial");
  require(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  require(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) != nullptr, "notAfter");
  require(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  require(
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) == 1,
      "CN");
  return cert;
}

inline std::string to_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  require(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

inline std::string to_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  require(bio != nullptr && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace detail

/// A leaf certificate and its private key, both PEM.
struct tls_leaf {
  std::string cert_pem;
  std::string key_pem;
};

/// A self-signed test CA. Not thread-safe; use it from one thread.
class test_ca {
 public:
  /// Throws std::runtime_error if OpenSSL fails.
  explicit test_ca(const char* cn = "Aoun test CA") : key_(detail::new_key()) {
    cert_ = detail::new_cert(key_.get(), cn, 1);
    X509* c = cert_.get();
    detail::require(X509_set_issuer_name(c, X509_get_subject_name(c)) == 1, "issuer");
    detail::add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
    detail::add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    detail::add_ext(c, c, NID_subject_key_identifier, "hash");
    detail::require(X509_sign(c, key_.get(), EVP_sha256()) > 0, "X509_sign (CA)");
    cert_pem_ = detail::to_pem(c);
  }

  /// The CA certificate, PEM: what a client loads with add_certificate_authority.
  const std::string& cert_pem() const { return cert_pem_; }

  /// A server certificate for `dns_name` (subjectAltName DNS:`dns_name`), signed by this CA.
  tls_leaf issue(const std::string& dns_name) {
    detail::pkey_ptr key = detail::new_key();
    detail::x509_ptr leaf = detail::new_cert(key.get(), dns_name.c_str(), ++serial_);
    X509* c = leaf.get();
    detail::require(X509_set_issuer_name(c, X509_get_subject_name(cert_.get())) == 1, "issuer");
    detail::add_ext(c, cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    detail::add_ext(c, cert_.get(), NID_key_usage, "critical,digitalSignature");
    detail::add_ext(c, cert_.get(), NID_ext_key_usage, "serverAuth");
    detail::add_ext(c, cert_.get(), NID_subject_alt_name, ("DNS:" + dns_name).c_str());
    detail::add_ext(c, cert_.get(), NID_authority_key_identifier, "keyid:always");
    detail::require(X509_sign(c, key_.get(), EVP_sha256()) > 0, "X509_sign (leaf)");
    return {detail::to_pem(c), detail::to_pem(key.get())};
  }

 private:
  detail::pkey_ptr key_;
  detail::x509_ptr cert_;
  std::string cert_pem_;
  long serial_ = 1;
};

}  // namespace aoun::test
