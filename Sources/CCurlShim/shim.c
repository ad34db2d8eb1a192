#include "CCurlShim.h"

#include <pthread.h>
#include <stdlib.h>

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_ptr(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = length;
    blob.flags = CURL_BLOB_COPY;
    return curl_easy_setopt(handle, option, &blob);
}

CURLcode ccurl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *list) {
    return curl_easy_setopt(handle, option, list);
}

CURLcode ccurl_setopt_write_function(CURL *handle, CURLoption option, curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

CURLcode ccurl_setopt_xferinfo_function(CURL *handle, curl_xferinfo_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

long ccurl_global_default_flags(void) {
    return CURL_GLOBAL_DEFAULT;
}

unsigned int ccurl_version_features(void) {
    return (unsigned int)curl_version_info(CURLVERSION_NOW)->features;
}

const char *ccurl_version_string(void) {
    return curl_version_info(CURLVERSION_NOW)->version;
}

// ---- share handle -------------------------------------------------------------------------

struct ccurl_share {
    CURLSH *share;
    pthread_mutex_t mutex[CURL_LOCK_DATA_LAST];
};

static void ccurl_share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr) {
    (void)handle;
    (void)access;
    struct ccurl_share *box = userptr;
    pthread_mutex_lock(&box->mutex[data]);
}

static void ccurl_share_unlock(CURL *handle, curl_lock_data data, void *userptr) {
    (void)handle;
    struct ccurl_share *box = userptr;
    pthread_mutex_unlock(&box->mutex[data]);
}

ccurl_share *ccurl_share_new(void) {
    struct ccurl_share *box = calloc(1, sizeof(*box));
    if (box == NULL) return NULL;
    box->share = curl_share_init();
    if (box->share == NULL) { free(box); return NULL; }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&box->mutex[i], NULL);
    int ok = curl_share_setopt(box->share, CURLSHOPT_LOCKFUNC, ccurl_share_lock) == CURLSHE_OK
        && curl_share_setopt(box->share, CURLSHOPT_UNLOCKFUNC, ccurl_share_unlock) == CURLSHE_OK
        && curl_share_setopt(box->share, CURLSHOPT_USERDATA, box) == CURLSHE_OK
        && curl_share_setopt(box->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK
        && curl_share_setopt(box->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK;
    if (!ok) { ccurl_share_free(box); return NULL; }
    return box;
}

CURLcode ccurl_setopt_share(CURL *handle, ccurl_share *share) {
    return curl_easy_setopt(handle, CURLOPT_SHARE, share->share);
}

void ccurl_share_free(ccurl_share *box) {
    if (box == NULL) return;
    curl_share_cleanup(box->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&box->mutex[i]);
    free(box);
}
