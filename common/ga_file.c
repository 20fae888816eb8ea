// SPDX-License-Identifier: MIT
// Atomic whole-file writes (see ga_file.h).
#include "ga_file.h"

#include "ga_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ga_err_t
ga_file_write_atomic(const char *path, const void *data, size_t len, char *why, size_t whylen)
{
    char tmp[4200];
    if ((size_t) snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(why, whylen, "path too long");
        return GA_EIO;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t put = 0;
    while (fd >= 0 && put < len) {
        ssize_t k = write(fd, (const char *) data + put, len - put);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        put += (size_t) k;
    }
    bool ok = fd >= 0 && put == len && fsync(fd) == 0;
    int err = ok ? 0 : errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        snprintf(why, whylen, "%s", err ? strerror(err) : "short write");
        if (fd >= 0) {
            unlink(tmp);
        }
        return GA_EIO;
    }
    return GA_OK;
}

ga_err_t
ga_file_read(const char *path, size_t max, char **text, size_t *len, char *why, size_t whylen)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return errno == ENOENT ? GA_ENOTFOUND : GA_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return GA_EIO;
    }
    if ((uint64_t) st.st_size > max) {
        snprintf(why, whylen, "larger than %zu bytes", max);
        close(fd);
        return GA_ETOOBIG;
    }
    size_t size = (size_t) st.st_size;
    char *buf = ga_malloc(size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            snprintf(why, whylen, "%s", k < 0 ? strerror(errno) : "file shrank while read");
            ga_free(buf);
            close(fd);
            return GA_EIO;
        }
        got += (size_t) k;
    }
    close(fd);
    buf[size] = '\0';
    *text = buf;
    *len = size;
    return GA_OK;
}
