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

// OPENSSL_free is a macro; Swift cannot call macros.
static inline void atrium_openssl_free(void *pointer) { OPENSSL_free(pointer); }
#endif
