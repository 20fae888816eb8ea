// SPDX-License-Identifier: MIT
// Whole-file writes that a crash cannot leave half done: the broker's state files (sticky
// routing, relay groups). Any thread; blocking file I/O, so callers bound how often they write.
#ifndef GA_FILE_H
#define GA_FILE_H

#include "ga_err.h"

#include <stddef.h>

// Writes `len` bytes to `path` atomically: to PATH.tmp (mode 0600), fsync, then rename over
// `path`. On failure the old file is untouched, the temporary one removed, and GA_EIO returned
// with the reason ("path too long", "short write" or strerror) in `why`.
GA_MUST_CHECK ga_err_t ga_file_write_atomic(const char *path, const void *data, size_t len,
                                            char *why, size_t whylen);

// Reads the whole regular file at `path` (at most `max` bytes) into a new NUL-terminated buffer
// `*text` (the caller frees it with ga_free), its length in `*len`. GA_ENOTFOUND when there is
// no file, GA_ETOOBIG when it is larger than `max`, GA_EIO otherwise, with the reason in `why`.
GA_MUST_CHECK ga_err_t ga_file_read(const char *path, size_t max, char **text, size_t *len,
                                    char *why, size_t whylen);

#endif
