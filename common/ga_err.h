// SPDX-License-Identifier: MIT
// Error codes shared by every genapi module. A function that can fail returns ga_err_t and hands
// results back through out-parameters; GA_OK is zero. Codes are small and stable: they also
// travel on the wire (docs/protocol.md, "Error codes").
#ifndef GA_ERR_H
#define GA_ERR_H

typedef enum {
    GA_OK = 0,         // success
    GA_EINVAL = 1,     // invalid argument or value
    GA_ENOMEM = 2,     // out of memory (only where aborting is not the policy)
    GA_EPROTO = 3,     // malformed or hostile input from a peer
    GA_ETIMEDOUT = 4,  // a deadline passed
    GA_ECLOSED = 5,    // the peer or object is closed
    GA_EAGAIN = 6,     // try again later (queue full, not ready)
    GA_ENOTFOUND = 7,  // no such item
    GA_ETOOBIG = 8,    // input exceeds a configured limit
    GA_EIO = 9,        // an operating-system or library call failed
    GA_ECONFIG = 10,   // configuration refused
    GA_EDENIED = 11,   // refused by a permission or authentication check
    GA_EUNAVAIL = 12,  // no live worker can take the request
    GA_ELOST = 13,     // the worker handling the request died
    GA_EHANDLER = 14,  // the handler answered with an error
    GA_EINTERNAL = 15, // an internal failure the client may not see in detail
} ga_err_t;

// Returns a static, human-readable name for `err` ("GA_EPROTO: protocol error"). Any thread.
const char *ga_strerror(ga_err_t err);

// Marks a function whose result must be checked. To ignore on purpose: GA_IGNORE(call); // why
#define GA_MUST_CHECK __attribute__((warn_unused_result))
#define GA_IGNORE(expr)                                                                            \
    do {                                                                                           \
        if (expr) {                                                                                \
        }                                                                                          \
    } while (0)

#endif
