// SPDX-License-Identifier: GPL-2.0-only
/*
 * exec_tracker: loads exec_tracker.bpf.o (found next to this executable),
 * attaches its two tracepoint programs and prints one line per event read
 * from the et_events ring buffer until SIGINT or SIGTERM. On exit it prints
 * the per-uid execution counts from et_exec_count.
 *
 * Flags that L3AFD passes to every user program (--iface, --direction,
 * --version, --log-dir, ...) are accepted and ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "exec_tracker.h"

#define OBJECT_NAME "exec_tracker.bpf.o"
#define MAX_LINKS 8

static volatile sig_atomic_t stop_requested;
static bool verbose;

struct options {
	const char *object_path;
	bool report_exits;
	__u32 uid_filter;
};

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	if (level == LIBBPF_INFO && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: exec_tracker [options]\n"
		"  --object=PATH   BPF object to load (default: " OBJECT_NAME
		" next to this program)\n"
		"  --uid=UID       report only processes of this uid\n"
		"  --report-exits=true|false\n"
		"                  report process exits too (default: true)\n"
		"  --no-exits      same as --report-exits=false\n"
		"  --verbose       show libbpf messages\n"
		"  --help          show this help\n"
		"Accepted and ignored (passed by L3AFD): --iface=, --direction=,\n"
		"--version=, --log-dir=, and other --name=value flags.\n");
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int parse_args(int argc, char **argv, struct options *opts)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (has_prefix(arg, "--object=")) {
			opts->object_path = arg + strlen("--object=");
		} else if (has_prefix(arg, "--uid=")) {
			char *end;
			unsigned long uid;

			errno = 0;
			uid = strtoul(arg + strlen("--uid="), &end, 10);
			if (errno || *end || end == arg + strlen("--uid=") || uid >= ET_ANY_UID) {
				fprintf(stderr, "exec_tracker: bad uid in %s\n", arg);
				return -1;
			}
			opts->uid_filter = (__u32)uid;
		} else if (strcmp(arg, "--no-exits") == 0) {
			opts->report_exits = false;
		} else if (has_prefix(arg, "--report-exits=")) {
			const char *v = arg + strlen("--report-exits=");

			if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
				opts->report_exits = true;
			} else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
				opts->report_exits = false;
			} else {
				fprintf(stderr, "exec_tracker: bad value in %s\n", arg);
				return -1;
			}
		} else if (strcmp(arg, "--verbose") == 0) {
			verbose = true;
		} else if (has_prefix(arg, "--iface=") || has_prefix(arg, "--direction=") ||
			   has_prefix(arg, "--version=") || has_prefix(arg, "--log-dir=")) {
			/* Orchestrator context; nothing to do with it here. */
		} else if (has_prefix(arg, "--")) {
			fprintf(stderr, "exec_tracker: ignoring unknown flag %s\n", arg);
		} else {
			fprintf(stderr, "exec_tracker: unexpected argument %s\n", arg);
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

/* Directory of the running executable + OBJECT_NAME. */
static int default_object_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/%s", exe, OBJECT_NAME) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Write the options into the object's .rodata before it is loaded. */
static int apply_config(struct bpf_object *obj, const struct options *opts)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		const void *initial;
		size_t size = 0;
		char *data;
		struct et_config cfg;
		int err;

		if (!bpf_map__is_internal(map) || !strstr(name, ".rodata"))
			continue;
		initial = bpf_map__initial_value(map, &size);
		if (!initial || size < sizeof(cfg))
			return -EINVAL;
		data = malloc(size);
		if (!data)
			return -ENOMEM;
		memcpy(data, initial, size);
		/* et_config is the only read-only global, at offset 0. */
		memcpy(&cfg, data, sizeof(cfg));
		cfg.report_exits = opts->report_exits ? 1 : 0;
		cfg.uid_filter = opts->uid_filter;
		memcpy(data, &cfg, sizeof(cfg));
		err = bpf_map__set_initial_value(map, data, size);
		free(data);
		return err;
	}
	return -ENOENT;
}

static void clock_prefix(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000);
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct et_event *e = data;
	char when[32];

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	clock_prefix(when, sizeof(when));
	if (e->kind == ET_KIND_EXEC) {
		printf("%s EXEC pid=%u ppid=%u uid=%u comm=%.*s parent=%.*s filename=%.*s\n",
		       when, e->pid, e->ppid, e->uid, ET_COMM_LEN, e->comm, ET_COMM_LEN,
		       e->parent_comm, ET_FILENAME_LEN, e->filename);
	} else if (e->kind == ET_KIND_EXIT) {
		int status = e->exit_status;
		char result[32];

		if (WIFSIGNALED(status))
			snprintf(result, sizeof(result), "signal=%d", WTERMSIG(status));
		else
			snprintf(result, sizeof(result), "code=%d", WEXITSTATUS(status));
		printf("%s EXIT pid=%u ppid=%u uid=%u comm=%.*s %s duration_ms=%llu\n", when,
		       e->pid, e->ppid, e->uid, ET_COMM_LEN, e->comm, result,
		       (unsigned long long)(e->duration_ns / 1000000));
	}
	return 0;
}

static void print_summary(int count_fd)
{
	__u32 key, next;
	__u32 *prev = NULL;
	__u64 count;

	while (bpf_map_get_next_key(count_fd, prev, &next) == 0) {
		if (bpf_map_lookup_elem(count_fd, &next, &count) == 0)
			printf("SUMMARY uid=%u execs=%llu\n", next, (unsigned long long)count);
		key = next;
		prev = &key;
	}
}

int main(int argc, char **argv)
{
	struct options opts = { .report_exits = true, .uid_filter = ET_ANY_UID };
	struct bpf_link *links[MAX_LINKS] = { 0 };
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct sigaction sa;
	char path[PATH_MAX];
	int nlinks = 0, events_fd, count_fd, err, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &opts) < 0)
		return 2;
	libbpf_set_print(print_libbpf);

	if (!opts.object_path) {
		err = default_object_path(path, sizeof(path));
		if (err) {
			fprintf(stderr, "exec_tracker: cannot locate %s: %s\n", OBJECT_NAME,
				strerror(-err));
			return 1;
		}
		opts.object_path = path;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	obj = bpf_object__open_file(opts.object_path, NULL);
	if (!obj) {
		fprintf(stderr, "exec_tracker: cannot open %s: %s\n", opts.object_path,
			strerror(errno));
		return 1;
	}
	err = apply_config(obj, &opts);
	if (err) {
		fprintf(stderr, "exec_tracker: cannot set configuration: %s\n", strerror(-err));
		goto out;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "exec_tracker: cannot load %s: %s\n", opts.object_path,
			strerror(-err));
		goto out;
	}

	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link;

		if (nlinks == MAX_LINKS)
			break;
		link = bpf_program__attach(prog);
		if (!link) {
			fprintf(stderr, "exec_tracker: cannot attach %s: %s\n",
				bpf_program__name(prog), strerror(errno));
			goto out;
		}
		links[nlinks++] = link;
	}

	events_fd = bpf_object__find_map_fd_by_name(obj, "et_events");
	count_fd = bpf_object__find_map_fd_by_name(obj, "et_exec_count");
	if (events_fd < 0 || count_fd < 0) {
		fprintf(stderr, "exec_tracker: maps et_events/et_exec_count missing\n");
		goto out;
	}
	rb = ring_buffer__new(events_fd, on_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "exec_tracker: cannot open ring buffer: %s\n", strerror(errno));
		goto out;
	}

	fprintf(stderr, "exec_tracker: tracing with %s (%d programs attached)\n",
		opts.object_path, nlinks);
	while (!stop_requested) {
		err = ring_buffer__poll(rb, 250 /* ms */);
		if (err == -EINTR)
			continue;
		if (err < 0) {
			fprintf(stderr, "exec_tracker: ring buffer poll: %s\n", strerror(-err));
			goto out;
		}
	}
	/* Drain what is already queued, then report the totals. */
	ring_buffer__consume(rb);
	print_summary(count_fd);
	fprintf(stderr, "exec_tracker: stopped\n");
	rc = 0;

out:
	ring_buffer__free(rb);
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	bpf_object__close(obj);
	return rc;
}
