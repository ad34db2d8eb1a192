// The system libcurl (Debian: libcurl4-openssl-dev). Its headers sit in a multiarch include
// directory that pkg-config reports, so the path is never written here.
#include <curl/curl.h>
