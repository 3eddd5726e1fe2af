/* SPDX-License-Identifier: MIT */
#ifndef LARCH_LOG_H
#define LARCH_LOG_H

/*
 * DOC: logging (daemons and tools only; library code does not log)
 *
 * The OpenBSD bgpd shape: log_warn() appends strerror(errno), log_warnx() does
 * not; fatal()/fatalx() log and exit(1) and belong to start-up and to faults
 * after which the process must not go on (a failed durable commit).
 */

void log_init(const char *progname, int debug);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
