#ifndef ATRIUM_COPENSSL_SHIM_H
#define ATRIUM_COPENSSL_SHIM_H
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

// OPENSSL_free is a macro; Swift cannot call macros.
static inline void atrium_openssl_free(void *pointer) { OPENSSL_free(pointer); }

static inline char *atrium_bio_to_string(BIO *bio) {
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    char *copy = malloc((size_t)length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, data, (size_t)length);
    copy[length] = 0;
    return copy;
}

// A self-signed certificate for development: EC P-256, CN and SAN localhost, 127.0.0.1 and ::1,
// valid from an hour ago for `days` days. Returns 1 and malloc'd PEM strings (free with free())
// plus the certificate's SHA-256 fingerprint (32 bytes), or 0.
static inline int atrium_make_self_signed(int days, char **certificate_pem, char **key_pem, unsigned char *fingerprint) {
    int ok = 0;
    EVP_PKEY *key = NULL;
    X509 *x509 = NULL;
    BIO *cert_bio = NULL, *key_bio = NULL;
    X509_EXTENSION *extension = NULL;
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (context == NULL || EVP_PKEY_keygen_init(context) <= 0) goto done;
    if (EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) <= 0) goto done;
    if (EVP_PKEY_keygen(context, &key) <= 0) goto done;
    x509 = X509_new();
    if (x509 == NULL || !X509_set_version(x509, 2)) goto done;
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) goto done;
    serial[0] &= 0x7f;
    BIGNUM *number = BN_bin2bn(serial, sizeof serial, NULL);
    if (number == NULL) goto done;
    BN_to_ASN1_INTEGER(number, X509_get_serialNumber(x509));
    BN_free(number);
    X509_gmtime_adj(X509_getm_notBefore(x509), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x509), (long)days * 86400);
    X509_set_pubkey(x509, key);
    X509_NAME *name = X509_get_subject_name(x509);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Atrium development", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x509, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x509, x509, NULL, NULL, 0);
    extension = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (extension == NULL || !X509_add_ext(x509, extension, -1)) goto done;
    X509_EXTENSION_free(extension);
    extension = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE");
    if (extension == NULL || !X509_add_ext(x509, extension, -1)) goto done;
    X509_EXTENSION_free(extension);
    extension = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
    if (extension == NULL || !X509_add_ext(x509, extension, -1)) goto done;
    if (!X509_sign(x509, key, EVP_sha256())) goto done;
    unsigned int length = 0;
    if (!X509_digest(x509, EVP_sha256(), fingerprint, &length) || length != 32) goto done;
    cert_bio = BIO_new(BIO_s_mem());
    key_bio = BIO_new(BIO_s_mem());
    if (cert_bio == NULL || key_bio == NULL) goto done;
    if (!PEM_write_bio_X509(cert_bio, x509)) goto done;
    if (!PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL)) goto done;
    *certificate_pem = atrium_bio_to_string(cert_bio);
    *key_pem = atrium_bio_to_string(key_bio);
    ok = *certificate_pem != NULL && *key_pem != NULL;
done:
    if (extension) X509_EXTENSION_free(extension);
    if (cert_bio) BIO_free(cert_bio);
    if (key_bio) BIO_free(key_bio);
    if (x509) X509_free(x509);
    if (key) EVP_PKEY_free(key);
    if (context) EVP_PKEY_CTX_free(context);
    return ok;
}
#endif
