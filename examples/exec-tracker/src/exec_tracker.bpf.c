// SPDX-License-Identifier: GPL-2.0-only
/*
 * exec-tracker: report every program execution and every process exit.
 *
 * handle_exec runs on the sched:sched_process_exec tracepoint. It counts
 * executions per uid in et_exec_count and sends an event with the pid, the
 * parent's tgid (task->real_parent->tgid, read with CO-RE), the new comm,
 * the parent's comm and the executed file name through the et_events ring
 * buffer. handle_exit runs on sched:sched_process_exit and reports when a
 * whole process (its thread group leader) exits, with its exit status and
 * lifetime.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "exec_tracker.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} et_events SEC(".maps");

/* uid -> number of executions since the object was loaded. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} et_exec_count SEC(".maps");

const volatile struct et_config et_config = {
	.report_exits = 1,
	.uid_filter = ET_ANY_UID,
};

static __always_inline bool uid_wanted(__u32 uid)
{
	return et_config.uid_filter == ET_ANY_UID || et_config.uid_filter == uid;
}

static __always_inline void count_exec(__u32 uid)
{
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&et_exec_count, &uid);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return;
	}
	/* First exec of this uid; another CPU may have raced us to it. */
	if (bpf_map_update_elem(&et_exec_count, &uid, &one, BPF_NOEXIST) == 0)
		return;
	count = bpf_map_lookup_elem(&et_exec_count, &uid);
	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline void fill_common(struct et_event *e, struct task_struct *task,
					__u32 kind, __u32 pid, __u32 uid)
{
	e->kind = kind;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->exit_status = 0;
	e->reserved = 0;
	e->timestamp_ns = bpf_ktime_get_ns();
	e->duration_ns = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->parent_comm, task, real_parent, comm);
}

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct et_event *e;
	__u32 name_off;

	if (!uid_wanted(uid))
		return 0;
	count_exec(uid);

	e = bpf_ringbuf_reserve(&et_events, sizeof(*e), 0);
	if (!e)
		return 0; /* ring full: the reader is behind */
	task = (struct task_struct *)bpf_get_current_task();
	fill_common(e, task, ET_KIND_EXEC, pid, uid);
	/* __data_loc: low 16 bits are the offset of the string in the record. */
	name_off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + name_off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct task_struct *task;
	struct et_event *e;

	if (!et_config.report_exits)
		return 0;
	/* Threads other than the leader exiting is not a process exit. */
	if (pid != (__u32)pid_tgid)
		return 0;
	if (!uid_wanted(uid))
		return 0;

	e = bpf_ringbuf_reserve(&et_events, sizeof(*e), 0);
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	fill_common(e, task, ET_KIND_EXIT, pid, uid);
	e->exit_status = BPF_CORE_READ(task, exit_code);
	e->duration_ns = e->timestamp_ns - BPF_CORE_READ(task, start_time);
	e->filename[0] = '\0';
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
