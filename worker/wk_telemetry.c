// SPDX-License-Identifier: MIT
// genapi/telemetry.h: the worker library's exported face of ga_telemetry.
#include <genapi/telemetry.h>

ga_err_t
wk_telemetry_attach(const char *pattern, const char *owner, wk_event_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach(pattern, owner, fn, arg, id);
}

ga_err_t
wk_telemetry_attach_all(const char *owner, wk_event_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach_all(owner, fn, arg, id);
}

ga_err_t
wk_telemetry_attach_worker_pool(const char *owner, wk_event_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach_worker_pool(owner, fn, arg, id);
}

ga_err_t
wk_telemetry_attach_config(const char *owner, wk_event_fn *fn, void *arg, int *id)
{
    return ga_telemetry_attach_config(owner, fn, arg, id);
}

ga_err_t
wk_telemetry_attach_default_logger(int *id)
{
    return ga_telemetry_attach_default_logger(id);
}

ga_err_t
wk_telemetry_detach(int id)
{
    return ga_telemetry_detach(id);
}

size_t
wk_telemetry_detach_all(const char *owner)
{
    return ga_telemetry_detach_owner(owner);
}

const char *
wk_event_name(wk_event_t event)
{
    return ga_telemetry_name(event);
}

size_t
wk_event_format(wk_event_t event, const wk_event_data_t *data, char *buf, size_t len)
{
    return ga_telemetry_format(event, data, buf, len);
}
