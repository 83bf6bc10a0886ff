#ifndef ATRIUM_CLIBPQ_SHIM_H
#define ATRIUM_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#ifdef __linux__
// Waiting for libpq's sockets to turn readable (PostgresPool's ReadPoller).
#include <sys/epoll.h>
#endif
#endif
