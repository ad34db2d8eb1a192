// OpenSSL's libcrypto (Debian: libssl-dev), for SHA-256. Already linked through libcurl.
#include <openssl/sha.h>
