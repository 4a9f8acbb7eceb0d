/*
 * epr-loader: loads BPF objects into the running kernel's verifier the way
 * `bpftool -d prog loadall OBJ DIR` does, without attaching or pinning, and
 * prints what libbpf and the kernel said as framed lines, so a host reading a
 * virtual machine's serial console can tell them from kernel messages.
 *
 * Built static against Debian's libbpf.a (scripts/install-verifier-vm.sh):
 *   gcc -O2 -static vm/loader.c -o loader -lbpf -lelf -lz -lzstd
 *
 * Usage: loader [-n LINES] [OBJECT...]
 *   With no OBJECT, every /objects/<N>.o in numeric order. -n keeps only the
 *   last LINES lines of each verifier log (default 400, 0 keeps all). Objects
 *   are loaded one after another in this process; a BPF filesystem at
 *   /sys/fs/bpf is shared by them (vm/init runs one object per process, with a
 *   fresh BPF filesystem each).
 *
 * Output, one line each, on stdout (unbuffered, one write per line):
 *   EPR-BEGIN <object>
 *   EPR-E <text>   what bpftool -d would print on stderr: libbpf's lines at
 *                  every level ("libbpf: ..."), the verifier's log between
 *                  "libbpf: prog 'P': -- BEGIN PROG LOAD LOG --" and
 *                  "-- END PROG LOAD LOG --", bpftool's "Error: ..." lines.
 *                  When a log is cut, its first kept line is
 *                  "[epr: N earlier lines of the verifier log left out]".
 *   EPR-O <json>   what `bpftool -j prog show` prints, one per loaded program
 *                  (id type name tag gpl_compatible uid bytes_xlated jited
 *                  bytes_jited bytes_memlock map_ids btf_id), plus
 *                  verified_insns (bpf_prog_info, kernel 5.16+) and section.
 *   EPR-END <object> <exit> <stage> <error>
 *                  exit: 0 when every program loaded, else 255 (bpftool's).
 *                  stage: loaded | kernel (a program reached BPF_PROG_LOAD and
 *                  the kernel refused it: -13 EACCES with the verifier's log,
 *                  or another errno) | libbpf (the object failed before any
 *                  program reached the kernel: missing kfunc/ksym/BTF type,
 *                  relocation, map creation, unknown section) | open (not a
 *                  BPF object libbpf can read).
 *                  error: libbpf's return value, a negative errno (0 if loaded).
 * Exit status: 0 when every object loaded, else 255.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static size_t keep_lines = 400;

/* One framed line, written with a single write(2). */
static void frame(const char *prefix, const char *text, size_t len)
{
	size_t plen = strlen(prefix), total = plen + len + 1, done = 0;
	char stack[1024], *buf = total <= sizeof(stack) ? stack : malloc(total);

	if (!buf)
		return;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, text, len);
	buf[plen + len] = '\n';
	while (done < total) {
		ssize_t n = write(STDOUT_FILENO, buf + done, total - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += n;
	}
	if (buf != stack)
		free(buf);
}

/* vasprintf's text, or NULL; the caller frees it. */
static char *format(const char *fmt, va_list ap, int *n)
{
	char *text = NULL;

	*n = vasprintf(&text, fmt, ap);
	if (*n < 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void framef(const char *prefix, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	char *text = format(fmt, ap, &n);
	va_end(ap);
	if (text)
		frame(prefix, text, n);
	free(text);
}

/*
 * The stderr-like stream: complete lines are framed as "EPR-E "; a verifier
 * log's lines are held in a ring of keep_lines and framed at its end.
 */
static struct {
	char *partial;       /* an unfinished line */
	size_t partial_len;
	bool in_log;
	char **ring;         /* the last keep_lines lines of the current log */
	size_t ring_count;   /* lines seen in the current log */
	bool kernel_reached; /* a "BPF program load failed" line was seen */
} err;

static void ring_flush(void)
{
	size_t kept = err.ring_count, first = 0;

	if (keep_lines && err.ring_count > keep_lines) {
		kept = keep_lines;
		first = err.ring_count % keep_lines;
		framef("EPR-E ", "[epr: %zu earlier lines of the verifier log left out]", err.ring_count - keep_lines);
	}
	for (size_t i = 0; i < kept; i++) {
		char **slot = &err.ring[keep_lines ? (first + i) % keep_lines : i];
		frame("EPR-E ", *slot, strlen(*slot));
		free(*slot);
		*slot = NULL;
	}
	err.ring_count = 0;
}

static void err_line(const char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (err.in_log) {
		static const char end[] = "-- END PROG LOAD LOG --";
		size_t end_len = sizeof(end) - 1;

		if (len >= end_len && !strncmp(line, end, end_len)) {
			ring_flush();
			err.in_log = false;
			frame("EPR-E ", line, len);
			return;
		}
		/* A log without a final newline: its last line and the marker apart. */
		if (len > end_len && !strncmp(line + len - end_len, end, end_len)) {
			err_line(line, len - end_len);
			err_line(end, end_len);
			return;
		}
		if (keep_lines) {
			size_t slot = err.ring_count % keep_lines;
			free(err.ring[slot]);
			err.ring[slot] = strndup(line, len);
		} else {
			char **grown = realloc(err.ring, (err.ring_count + 1) * sizeof(*grown));
			if (!grown)
				return;
			err.ring = grown;
			err.ring[err.ring_count] = strndup(line, len);
		}
		err.ring_count++;
		return;
	}
	frame("EPR-E ", line, len);
	if (len >= 14 && !strncmp(line, "libbpf: prog '", 14)) {
		if (memmem(line, len, "': -- BEGIN PROG LOAD LOG --", 28))
			err.in_log = true;
		if (memmem(line, len, "': BPF program load failed: ", 28))
			err.kernel_reached = true;
	}
}

static void err_write(const char *text, size_t len)
{
	const char *end = text + len;

	while (text < end) {
		const char *nl = memchr(text, '\n', end - text);
		size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);

		if (!nl) {
			char *grown = realloc(err.partial, err.partial_len + n + 1);
			if (!grown)
				return;
			memcpy(grown + err.partial_len, text, n);
			err.partial = grown;
			err.partial_len += n;
			return;
		}
		if (err.partial_len) {
			char *grown = realloc(err.partial, err.partial_len + n + 1);
			if (grown) {
				memcpy(grown + err.partial_len, text, n);
				err_line(grown, err.partial_len + n);
				err.partial = grown;
			}
			err.partial_len = 0;
		} else {
			err_line(text, n);
		}
		text = nl + 1;
	}
}

static void err_finish(void)
{
	if (err.partial_len)
		err_line(err.partial, err.partial_len);
	err.partial_len = 0;
	if (err.in_log) {
		ring_flush();
		err.in_log = false;
	}
}

static void errf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	char *text = format(fmt, ap, &n);
	va_end(ap);
	if (text)
		err_write(text, n);
	free(text);
}

/* bpftool -d: libbpf prints at every level, to stderr. */
static int print_all_levels(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *text = NULL;
	int n = vasprintf(&text, fmt, ap);

	(void)level;
	if (n >= 0)
		err_write(text, n);
	free(text);
	return n;
}

/* bpftool's get_prog_type_by_name(): on failure, asks libbpf again at debug level. */
static int guess_type(const char *section, enum bpf_prog_type *type, enum bpf_attach_type *attach)
{
	return libbpf_prog_type_by_name(section, type, attach) ? libbpf_prog_type_by_name(section, type, attach) : 0;
}

static long memlock_of(int fd)
{
	char path[64], line[256];
	long value = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %ld", &value) == 1)
			break;
	fclose(f);
	return value;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The fields `bpftool -j prog show` prints (loaded_at and pids left out), and verified_insns. */
static void show_program(struct bpf_program *prog)
{
	int fd = bpf_program__fd(prog);
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info), map_count;
	__u32 *map_ids = NULL;
	const char *type, *name;
	char *text = NULL;
	size_t text_len = 0;
	long memlock;
	FILE *f;

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &info_len))
		return;
	map_count = info.nr_map_ids;
	if (map_count) {
		map_ids = calloc(map_count, sizeof(*map_ids));
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = map_count;
		info.map_ids = (__u64)(unsigned long)map_ids;
		info_len = sizeof(info);
		if (!map_ids || bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
			free(map_ids);
			return;
		}
		if (info.nr_map_ids < map_count)
			map_count = info.nr_map_ids;
	}
	f = open_memstream(&text, &text_len);
	if (!f) {
		free(map_ids);
		return;
	}
	fprintf(f, "{\"id\":%u,", info.id);
	type = libbpf_bpf_prog_type_str(info.type);
	if (type)
		fprintf(f, "\"type\":\"%s\",", type);
	else
		fprintf(f, "\"type\":%u,", info.type);
	/* bpftool names a program by its BTF function name when it has one. */
	name = info.btf_id && info.nr_func_info ? bpf_program__name(prog) : info.name;
	fputs("\"name\":", f);
	json_string(f, name);
	fprintf(f, ",\"tag\":\"");
	for (int i = 0; i < BPF_TAG_SIZE; i++)
		fprintf(f, "%02x", info.tag[i]);
	fprintf(f, "\",\"gpl_compatible\":%s,\"uid\":%u,\"bytes_xlated\":%u,", info.gpl_compatible ? "true" : "false",
		info.created_by_uid, info.xlated_prog_len);
	if (info.jited_prog_len)
		fprintf(f, "\"jited\":true,\"bytes_jited\":%u,", info.jited_prog_len);
	else
		fprintf(f, "\"jited\":false,");
	memlock = memlock_of(fd);
	if (memlock >= 0)
		fprintf(f, "\"bytes_memlock\":%ld,", memlock);
	fputs("\"map_ids\":[", f);
	for (__u32 i = 0; i < map_count; i++)
		fprintf(f, "%s%u", i ? "," : "", map_ids[i]);
	fputs("]", f);
	if (info.btf_id)
		fprintf(f, ",\"btf_id\":%u", info.btf_id);
	fprintf(f, ",\"verified_insns\":%u,\"section\":", info.verified_insns);
	json_string(f, bpf_program__section_name(prog));
	fputs("}", f);
	fclose(f);
	frame("EPR-O ", text, text_len);
	free(text);
	free(map_ids);
}

/* One object: bpftool's load_with_options() for loadall, less the pinning. */
static int load_object(const char *path)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts,
		/* log_level 1 + 2 + stats, as bpftool -d asks; libbpf owns the
		 * buffer: 16 MiB, doubled and retried on ENOSPC (6.1 says ENOSPC
		 * when the log does not fit, even for a program it accepts). */
		.kernel_log_level = 1 + 2 + 4,
	);
	const char *stage = "loaded";
	struct bpf_object *obj;
	struct bpf_program *prog;
	int ret = 0;

	framef("EPR-BEGIN ", "%s", path);
	err.kernel_reached = false;
	obj = bpf_object__open_file(path, &open_opts);
	ret = -errno;
	if (!obj) {
		errf("Error: failed to open object file\n");
		stage = "open";
		goto out;
	}
	ret = 0;
	bpf_object__for_each_program(prog, obj) {
		enum bpf_prog_type type = BPF_PROG_TYPE_UNSPEC;
		enum bpf_attach_type attach = 0;

		ret = guess_type(bpf_program__section_name(prog), &type, &attach);
		if (ret < 0)
			goto close;
		if (bpf_program__type(prog) != type)
			bpf_program__set_type(prog, type);
		bpf_program__set_expected_attach_type(prog, attach);
	}
	ret = bpf_object__load(obj);
	if (ret) {
		errf("Error: failed to load object file\n");
		goto close;
	}
	err_finish();
	bpf_object__for_each_program(prog, obj)
		show_program(prog);
close:
	if (ret) {
		stage = err.kernel_reached ? "kernel" : "libbpf";
		errf("Warning: bpftool is now running in libbpf strict mode and has more stringent requirements about BPF programs.\n"
		     "If it used to work for this object file but now doesn't, see --legacy option for more details.\n\n");
	}
	bpf_object__close(obj);
out:
	err_finish();
	framef("EPR-END ", "%s %d %s %d", path, ret ? 255 : 0, stage, ret);
	return ret ? 255 : 0;
}

static int by_number(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

static bool is_object(const struct dirent *entry)
{
	size_t n = strlen(entry->d_name);
	return n > 2 && !strcmp(entry->d_name + n - 2, ".o");
}

static int object_filter(const struct dirent *entry)
{
	return is_object(entry);
}

int main(int argc, char **argv)
{
	struct rlimit infinite = {RLIM_INFINITY, RLIM_INFINITY};
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n') {
			keep_lines = strtoul(optarg, NULL, 10);
		} else {
			fprintf(stderr, "usage: %s [-n LINES] [OBJECT...]\n", argv[0]);
			return 2;
		}
	}
	if (keep_lines && !(err.ring = calloc(keep_lines, sizeof(*err.ring))))
		return 1;
	setrlimit(RLIMIT_MEMLOCK, &infinite);
	libbpf_set_print(print_all_levels);
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			status |= load_object(argv[i]);
	} else {
		struct dirent **entries;
		int n = scandir("/objects", &entries, object_filter, by_number);

		for (int i = 0; i < n; i++) {
			char path[512];
			snprintf(path, sizeof(path), "/objects/%s", entries[i]->d_name);
			status |= load_object(path);
			free(entries[i]);
		}
		if (n > 0)
			free(entries);
	}
	return status ? 255 : 0;
}
