#ifndef CCURLSHIM_H
#define CCURLSHIM_H

// Non-variadic wrappers for libcurl's variadic entry points, which Swift cannot call. One
// function per argument type, as swift-corelibs-foundation does it.

#include <curl/curl.h>

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_ptr(CURL *handle, CURLoption option, const void *value);
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value);
// Copies `length` bytes (CURL_BLOB_COPY), so the caller's buffer may go away after the call.
CURLcode ccurl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length);
CURLcode ccurl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list);
CURLcode ccurl_setopt_write_function(CURL *handle, CURLoption option, curl_write_callback callback);
CURLcode ccurl_setopt_xferinfo_function(CURL *handle, curl_xferinfo_callback callback);

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ccurl_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode ccurl_getinfo_string(CURL *handle, CURLINFO info, const char **value);

// curl_global_init(CURL_GLOBAL_DEFAULT). (A constructor in the shim has already told OpenSSL
// not to tear itself down at exit.)
CURLcode ccurl_global_init(void);
unsigned int ccurl_version_features(void);
const char *ccurl_version_string(void);

#endif
