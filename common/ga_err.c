// SPDX-License-Identifier: MIT
// Names for ga_err_t codes. Pure table lookup.
#include "ga_err.h"

const char *
ga_strerror(ga_err_t err)
{
    switch (err) {
    case GA_OK:
        return "ok";
    case GA_EINVAL:
        return "invalid argument";
    case GA_ENOMEM:
        return "out of memory";
    case GA_EPROTO:
        return "protocol error";
    case GA_ETIMEDOUT:
        return "timed out";
    case GA_ECLOSED:
        return "closed";
    case GA_EAGAIN:
        return "try again";
    case GA_ENOTFOUND:
        return "not found";
    case GA_ETOOBIG:
        return "too big";
    case GA_EIO:
        return "I/O error";
    case GA_ECONFIG:
        return "configuration refused";
    case GA_EDENIED:
        return "denied";
    case GA_EUNAVAIL:
        return "unavailable";
    case GA_ELOST:
        return "worker lost";
    case GA_EHANDLER:
        return "handler error";
    case GA_EINTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}
