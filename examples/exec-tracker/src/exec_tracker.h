/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Data shared by exec_tracker.bpf.c and the exec_tracker loader: the ring
 * buffer event record and the read-only configuration block.
 */
#ifndef EXEC_TRACKER_H
#define EXEC_TRACKER_H

#define ET_COMM_LEN 16
#define ET_FILENAME_LEN 256
#define ET_ANY_UID 0xffffffffu

enum et_event_kind {
	ET_KIND_EXEC = 1,
	ET_KIND_EXIT = 2,
};

struct et_event {
	__u32 kind;          /* enum et_event_kind */
	__u32 pid;           /* thread group id of the process */
	__u32 ppid;          /* thread group id of task->real_parent */
	__u32 uid;
	__s32 exit_status;   /* ET_KIND_EXIT: task->exit_code (wait status) */
	__u32 reserved;
	__u64 timestamp_ns;  /* CLOCK_MONOTONIC */
	__u64 duration_ns;   /* ET_KIND_EXIT: lifetime of the process */
	char comm[ET_COMM_LEN];
	char parent_comm[ET_COMM_LEN];
	char filename[ET_FILENAME_LEN]; /* ET_KIND_EXEC: the executed path */
};

/* Lives in .rodata: the loader may change it before loading. */
struct et_config {
	__u32 report_exits;  /* 0: the exit program sends nothing */
	__u32 uid_filter;    /* ET_ANY_UID, or the only uid to report */
};

#endif /* EXEC_TRACKER_H */
